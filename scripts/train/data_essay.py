"""essay-demo data: writing coherence. Real multi-sentence paragraphs (Debian long descriptions) get k in 0..5
automatic corruptions (swap two sentences, swap in a sentence from another package, drop words, scramble a few
words); the target score is 6 - k on the 1-6 rubric. Split by source package."""
import collections, os, pickle, random, re, sys
from common import WORK, read_jsonl, split_of, tokenize_rows

SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"(])")


def paragraphs():
    seen, out = set(), []
    for p in read_jsonl(os.path.join(WORK, "packages.jsonl")):
        for para in p["long"].split("\n\n"):
            if para in seen:
                continue
            seen.add(para)
            sents = [s.strip() for s in SENT.split(para) if s.strip()]
            n = len(para.split())
            if 3 <= len(sents) <= 12 and 35 <= n <= 170 and not re.search(r"\s[*-]\s", para):
                out.append((split_of(p["source"]), sents))
    return out


def corrupt(sents, k, pool, rng):
    """Apply k corruptions; return the text, the ops and the character spans of the damaged regions (token-level
    training signal: which words a reader would stumble on)."""
    sents = [s.split() for s in sents]
    bad = [set() for _ in sents]  # per sentence: damaged word positions ('all' = the whole sentence)
    ops = []
    for _ in range(k):
        op = rng.choice(["swap", "intrude", "drop", "scramble"])
        i = rng.randrange(len(sents))
        if op == "swap":
            j = rng.choice([x for x in range(len(sents)) if x != i])
            sents[i], sents[j] = sents[j], sents[i]
            bad[i], bad[j] = bad[j] | {"all"}, bad[i] | {"all"}
        elif op == "intrude":
            sents[i] = rng.choice(rng.choice(pool)).split(); bad[i] = {"all"}
        elif op == "drop":
            w = sents[i]
            n = max(1, len(w) // 4)
            for _ in range(n):
                if len(w) > 2:
                    d = rng.randrange(len(w)); del w[d]
                    bad[i] = {x if x == "all" or x < d else x - 1 for x in bad[i]} | {max(0, d - 1), min(d, len(w) - 1)}
        else:
            w = sents[i]
            if len(w) >= 4:
                a = rng.randrange(0, len(w) - 3)
                seg = w[a:a + 5]; rng.shuffle(seg); w[a:a + 5] = seg
                bad[i] |= set(range(a, min(a + 5, len(w))))
        ops.append(op)
    text, spans = "", []
    for w, b in zip(sents, bad):
        for x, word in enumerate(w):
            if text:
                text += " "
            if "all" in b or x in b:
                spans.append([len(text), len(text) + len(word)])
            text += word
    return text, ops, spans


def main():
    rng = random.Random(7)
    paras = paragraphs()
    data = {}
    for split, copies in (("train", 2), ("dev", 1), ("test", 1)):
        items = [s for sp, s in paras if sp == split]
        rows = []
        for sents in items:
            for _ in range(copies):
                k = rng.randrange(6)
                text, ops, spans = corrupt(sents, k, items, rng)
                rows.append({"a": text, "score": 6 - k, "ops": ops, "spans": spans})
        data[split] = tokenize_rows(rows, "essay_" + split, 256)
        print(split, len(items), "paragraphs", len(rows), "rows", file=sys.stderr)
    pickle.dump(data, open(os.path.join(WORK, "essay.pkl"), "wb"))


if __name__ == "__main__":
    main()
