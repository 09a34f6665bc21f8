"""qa-demo data, SQuAD 2.0 style. Contexts mix facts about a target package and two distractor packages (from
Debian's apt metadata, rendered with varied sentence templates) with the start of the target's real description;
WordNet contexts hold several definitions. About a third of questions are unanswerable (the fact is only given for
a distractor, or the asked-about package/word is absent): the target is [CLS] (index 0).
Question phrasings are split: 'train' phrasings for train/dev, 'heldout' phrasings only for test. Packages are split
by source package, synsets by id."""
import os, pickle, random, re, sys
from common import WORK, read_jsonl, split_of, tokenize_rows

# fact -> (context templates, train question phrasings, held-out question phrasings). {n}=package, {x}=answer
FACTS = {
    "maintainer": (["{n} is maintained by {x}.", "The maintainer of {n} is {x}.", "{x} looks after the {n} package.",
                    "Packaging work on {n} is done by {x}."],
                   ["Who maintains {n}?", "Who is the maintainer of {n}?", "Which team or person looks after {n}?",
                    "{n} is maintained by whom?", "Who takes care of the {n} package?", "Who packages {n} for Debian?"],
                   ["Name the maintainer of {n}.", "Whose job is it to maintain {n}?", "Who is responsible for packaging {n}?"]),
    "section": (["{n} lives in the {x} section of the archive.", "The archive files {n} under {x}.",
                 "{n} belongs to the {x} section."],
                ["Which section is {n} in?", "In what section of the archive is {n}?", "Under which section is {n} filed?",
                 "What archive section does {n} belong to?"],
                ["What is the section of {n}?", "{n} is listed in which section?"]),
    "homepage": (["The upstream homepage of {n} is {x}.", "More about {n} can be found at {x}.",
                  "{n}'s project website is {x}."],
                 ["What is the homepage of {n}?", "Where is {n}'s website?", "Which URL is the home of {n}?",
                  "Where can I read more about {n}?"],
                 ["What web address does the {n} project use?", "Give the upstream site of {n}."]),
    "version": (["Bookworm ships {n} version {x}.", "The packaged version of {n} is {x}.", "{n} {x} is the version in Debian 12."],
                ["What version of {n} is packaged?", "Which version of {n} does bookworm ship?",
                 "What is the version number of {n}?"],
                ["Which release of {n} is in Debian 12?", "{n} is at which version?"]),
    "size": (["Once installed, {n} takes {x}.", "{n} needs about {x} of disk space.", "The installed size of {n} is {x}."],
             ["How much disk space does {n} use?", "How big is {n} once installed?", "What is the installed size of {n}?"],
             ["How many kilobytes does {n} occupy?", "How large is the {n} installation?"]),
    "source": (["{n} is built from the {x} source package.", "The source package behind {n} is {x}."],
               ["Which source package builds {n}?", "What is the source package of {n}?", "{n} is built from which source?"],
               ["From what source is {n} compiled?", "Which source package produces {n}?"]),
    "depends": (["{n} depends on {x}.", "To run, {n} needs {x}.", "{n} requires {x}."],
                ["What does {n} depend on?", "Which packages does {n} require?", "What are the dependencies of {n}?"],
                ["What must be installed for {n} to work?", "{n} needs which packages?"]),
    "summary": (["{n}: {x}.", "{n} provides {x}.", "In short, {n} is described as {x}."],
                ["What is {n}?", "What does {n} do?", "Describe {n} in a few words.", "What kind of software is {n}?"],
                ["Summarise what {n} is.", "How would you describe {n} briefly?", "What is the {n} package for?"]),
}
WN_DEF = (["{W} means {x}.", "A {w} is {x}.", "The word \"{w}\" refers to {x}.", "{W}: {x}."],
          ["What does {w} mean?", "What is the meaning of {w}?", "Define {w}.", "What is meant by {w}?"],
          ["Give the definition of {w}.", "What is the sense of the word {w}?"])
WN_HYP = (["A {w} is a kind of {x}.", "{W} is a type of {x}."],
          ["What kind of thing is a {w}?", "{W} is a type of what?"],
          ["What is a {w} an example of?"])


def facts_of(p):
    f = {"maintainer": p["maintainer"], "section": p["section"].split("/")[-1], "version": p["version"],
         "size": f"{p['installed_size']} kB", "summary": p["short"][0].lower() + p["short"][1:]}
    if p["homepage"]:
        f["homepage"] = p["homepage"]
    if p["source"] != p["name"]:
        f["source"] = p["source"]
    deps = [d for d in dict.fromkeys(p["depends"]) if d != p["name"]][:3]
    if deps:
        f["depends"] = deps[0] if len(deps) == 1 else ", ".join(deps[:-1]) + " and " + deps[-1]
    return {k: v for k, v in f.items() if v}


def render(tmpl, n, x):
    """Render a template; return (text, answer char start) for x."""
    pre, _, post = tmpl.partition("{x}")
    pre = pre.replace("{n}", n); post = post.replace("{n}", n)
    return pre + x + post, len(pre)


def debian_example(target, others, phr, rng):
    kind = rng.random()
    tf = facts_of(target)
    fact = rng.choice(sorted(tf))
    blocks = []
    answerable = kind >= 0.34
    for i, p in enumerate([target] + others):
        f = facts_of(p)
        keys = rng.sample(sorted(f), min(len(f), rng.randint(2, 4)))
        if i == 0:
            keys = [k for k in keys if k != fact]
            if answerable:
                keys.append(fact)
        elif i == 1 and fact in f and fact not in keys:
            keys.append(fact)  # a distractor states the same kind of fact
        sents = []
        for k in keys:
            s, st = render(rng.choice(FACTS[k][0]), p["name"], f[k])
            sents.append((s, st if (i == 0 and k == fact) else None))
        rng.shuffle(sents)
        if i == 0 and rng.random() < 0.7:
            words = target["long"].split()[:rng.randint(12, 35)]
            sents.insert(rng.randint(0, len(sents)), (" ".join(words) + ("." if not words[-1].endswith(".") else ""), None))
        blocks.append(sents)
    rng.shuffle(blocks)
    ctx, ans = "", None
    for s, st in [x for b in blocks for x in b]:
        if ctx:
            ctx += " "
        if st is not None:
            ans = [len(ctx) + st, len(ctx) + st + len(tf[fact])]
        ctx += s
    name = target["name"]
    if kind < 0.12:  # ask about a package that is not in the context at all
        name = others[-1]["name"] + "x" if rng.random() < 0.3 else rng.choice(QA_ABSENT)["name"]
        ans = None
    q = rng.choice(FACTS[fact][1 if phr == "train" else 2]).replace("{n}", name)
    q = q[0].upper() + q[1:]
    return {"a": q, "b": ctx, "ans": ans, "fact": fact}


def wn_example(target, others, phr, rng, words):
    def w_of(s):
        return s["words"][0]
    use_hyp = target["hypernyms"] and target["hypernyms"][0] in words and rng.random() < 0.3
    spec = WN_HYP if use_hyp else WN_DEF
    x_t = words[target["hypernyms"][0]] if use_hyp else target["gloss"]
    answerable = rng.random() >= 0.34
    items = []
    for i, s in enumerate([target] + others):
        if i == 0 and not answerable:
            continue
        x = x_t if i == 0 else s["gloss"]
        t = rng.choice(WN_DEF[0] if i else spec[0])
        w = w_of(s)
        pre, _, post = t.partition("{x}")
        pre = pre.replace("{w}", w).replace("{W}", w[0].upper() + w[1:]); post = post.replace("{w}", w).replace("{W}", w)
        items.append((pre + x + post, len(pre) if i == 0 else None, x))
    rng.shuffle(items)
    ctx, ans = "", None
    for s, st, x in items:
        if ctx:
            ctx += " "
        if st is not None:
            ans = [len(ctx) + st, len(ctx) + st + len(x)]
        ctx += s
    w = w_of(target)
    q = rng.choice(spec[1 if phr == "train" else 2]).replace("{w}", w).replace("{W}", w[0].upper() + w[1:])
    return {"a": q[0].upper() + q[1:], "b": ctx, "ans": ans, "fact": "wn-hypernym" if use_hyp else "wn-definition"}


QA_ABSENT = []


def main():
    rng = random.Random(5)
    pk = [p for p in read_jsonl(os.path.join(WORK, "packages.jsonl")) if p["long"] and len(p["short"]) < 90]
    wn = [s for s in read_jsonl(os.path.join(WORK, "wordnet.jsonl")) if s["gloss"] and len(s["gloss"].split()) < 30]
    words = {s["id"]: s["words"][0] for s in wn}
    counts = {"train": (36000, 9000), "dev": (1500, 400), "test": (1500, 400)}
    data = {}
    for split, (nd, nw) in counts.items():
        P = [p for p in pk if split_of(p["source"]) == split]
        W = [s for s in wn if split_of(s["id"]) == split]
        QA_ABSENT[:] = P
        phrasings = ["train"] if split != "test" else ["heldout", "train"]
        for phr in phrasings:
            rows = []
            for _ in range(nd):
                t, *o = rng.sample(P, 3)
                rows.append(debian_example(t, o, phr, rng))
            for _ in range(nw):
                t, *o = rng.sample(W, rng.randint(3, 5))
                rows.append(wn_example(t, o, phr, rng, words))
            rows = tokenize_rows(rows, f"qa_{split}_{phr}", 256)
            kept = [r for r in rows if not r.get("lost")]
            print(split, phr, len(rows), "kept", len(kept), "unanswerable", sum(r["ans"] is None for r in kept), file=sys.stderr)
            data[split if phr == "train" or split != "test" else "test_heldout"] = kept
    data["test_seen"] = data.pop("test") if "test_heldout" in data else None
    data["test"] = data.pop("test_heldout")
    pickle.dump(data, open(os.path.join(WORK, "qa.pkl"), "wb"))


if __name__ == "__main__":
    main()
