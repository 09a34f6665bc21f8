"""qa-demo data (v2): human-written extractive QA from ../shared/data/qa-train, SQuAD 2.0 style.

Train: SQuAD v1.0 train, QED/NQ train and COVID-QA (first answer of each question), plus generated unanswerable
questions: a SQuAD train question paired with another paragraph of its own article that contains none of its answers
(one for every NEG_EVERY answerable SQuAD questions). Long contexts become the gateway's own windows (qa_windows.ts):
the window(s) holding the answer and at most one other (target [CLS]).

Dev (never trained on): SquadShifts new_wiki (all answers kept) with its own generated negatives, built the same way from
new_wiki's articles (one per question, so half of the dev set is unanswerable, as in SQuAD 2.0 dev); QED/NQ dev as a
second held-out set. Writes .work/qa/{train.pkl, dev.jsonl, dev_neg.jsonl, nq_dev.jsonl} (the .jsonl files are the pairs,
which eval_qa.ts reads) and .work/qa/train_info.json.
"""
import gzip, json, os, pickle, random, re, string, subprocess, sys
import numpy as np
from common import WORK, HERE, ROOT, write_jsonl, read_jsonl
from build_tokenizer import load_squad

MAX_LEN = int(os.environ.get("QA_MAX_LEN", 256))
STRIDE = 64  # the gateway's limits.qaStride
MAX_Q = 64  # training only: questions longer than this many tokens are skipped
NEG_EVERY = int(os.environ.get("QA_NEG_EVERY", 3))
OUT = os.path.join(WORK, "qa")
os.makedirs(OUT, exist_ok=True)


def norm(s):
    s = s.lower(); s = "".join(ch for ch in s if ch not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", s).split())


def negatives(data, rng, every, prefix):
    """(question, other paragraph of the same article without any of its answers) pairs."""
    out = []
    for art in data:
        paras = art["paragraphs"]
        if len(paras) < 2:
            continue
        normed = [" " + norm(p["context"]) + " " for p in paras]
        for pi, p in enumerate(paras):
            for q in p["qas"]:
                if every > 1 and rng.randrange(every):
                    continue
                golds = [norm(a["text"]) for a in q["answers"]]
                cands = [j for j in range(len(paras)) if j != pi and not any(g and (" " + g + " ") in normed[j] for g in golds)]
                if cands:
                    j = rng.choice(cands)
                    out.append({"id": prefix + q["id"], "q": q["question"], "c": paras[j]["context"], "ans": None,
                                "golds": [], "src_para": pi, "para": j})
    return out


def pairs(data, all_answers=False):
    out = []
    for art in data:
        for p in art["paragraphs"]:
            for q in p["qas"]:
                a = q["answers"][0]
                r = {"id": q["id"], "q": q["question"], "c": p["context"], "ans": [a["answer_start"], a["answer_start"] + len(a["text"])]}
                if all_answers:
                    r["golds"] = [x["text"] for x in q["answers"]]
                out.append(r)
    return out


def windows(rows, name, keep, offs=False):
    src, dst = os.path.join(OUT, name + ".in.jsonl"), os.path.join(OUT, name + ".win.jsonl")
    write_jsonl(src, [{"id": r["id"], "q": r["q"], "c": r["c"], "ans": r["ans"], "keep": keep, "offs": offs} for r in rows])
    subprocess.run(["node", "--import", "tsx", os.path.join(HERE, "qa_windows.ts"), os.path.join(WORK, "tokenizer.json"), src, dst,
                    str(MAX_LEN), str(STRIDE)], check=True, cwd=ROOT)
    os.remove(src)
    return dst


def main():
    rng = random.Random(20261201)
    train, info = [], {}
    for name in ("squad_v1.0_train.json.gz", "qed_nq_train.json", "covidqa_deepset_200423.json"):
        d = load_squad(name)
        rows = pairs(d)
        info[name] = len(rows)
        train += rows
        if name.startswith("squad"):
            neg = negatives(d, rng, NEG_EVERY, "neg-")
            info["generated_negatives_squad_train"] = len(neg)
            train += neg
    dev = load_squad("squadshifts_new_wiki_v1.0.json")
    write_jsonl(os.path.join(OUT, "dev.jsonl"), pairs(dev, all_answers=True))
    dneg = negatives(dev, random.Random(7), 1, "neg-")
    write_jsonl(os.path.join(OUT, "dev_neg.jsonl"), dneg)
    write_jsonl(os.path.join(OUT, "nq_dev.jsonl"), pairs(load_squad("qed_nq_dev.json"), all_answers=True))
    info["dev_answerable"] = sum(len(q["qas"]) for a in dev for q in a["paragraphs"]); info["dev_negatives"] = len(dneg)
    path = windows(train, "train", "answer+1")
    rows, skipped = [], 0
    for w in read_jsonl(path):
        q_len = w["tt"].index(1) if 1 in w["tt"] else len(w["tt"])
        if q_len > MAX_Q + 2:
            skipped += 1
            continue
        rows.append((np.array(w["ids"], dtype=np.int32), q_len, w["s"], w["e"], w["id"]))
    os.remove(path)
    info.update(train_windows=len(rows), train_windows_with_answer=sum(1 for r in rows if r[2] > 0), skipped_long_questions=skipped,
                max_len=MAX_LEN, stride=STRIDE)
    pickle.dump(rows, open(os.path.join(OUT, "train.pkl"), "wb"))
    json.dump(info, open(os.path.join(OUT, "train_info.json"), "w"), indent=1)
    print(json.dumps(info), file=sys.stderr)


if __name__ == "__main__":
    main()
