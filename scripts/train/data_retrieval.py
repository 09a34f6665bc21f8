"""Data for rerank-demo (cross-encoder) and retrieve-demo (bi-encoder): (question, paragraph) relevance from the QA files.

Train: the questions of SQuAD v1.0 train and QED/NQ train, each with its own paragraph as the positive; hard negatives are
the other paragraphs of its article and BM25's top paragraphs over all 26,003 training paragraphs, leaving out any
paragraph that contains one of its answers (so a negative is never secretly relevant).
Dev (never trained on): the 7,938 SquadShifts new_wiki questions against all 1,581 new_wiki paragraphs, with BM25's top 100
for each question (the baseline, and the candidates the reranker reorders).

Texts are tokenized once, without special tokens, with the gateway's Rust tokenizer; a pair is [CLS] q [SEP] p [SEP], which
is what the tokenizer's pair template gives for (q, p). Writes .work/ret/data.pkl and .work/ret/dev.json (dev texts and BM25 rankings, for eval_rank.ts).
`--dev-only OUT.json FILE...` writes only such a dev file, for other SQuAD-format files (QED/NQ dev: where the hybrid's
keyword weight was chosen).
"""
import collections, json, math, os, pickle, re, sys, time
import numpy as np
from common import WORK, tokenize_rows
from build_tokenizer import load_squad
from qa_lexicon import fold, stem

OUT = os.path.join(WORK, "ret")
os.makedirs(OUT, exist_ok=True)
STOP = set("""a about above after again against all am an and any are as at be because been before being below between both but by
can could did do does doing down during each few for from further had has have having he her here hers herself him himself his how
i if in into is it its itself just me more most my myself no nor not now of off on once only or other our ours ourselves out over
own same she should so some such than that the their theirs them themselves then there these they this those through to too under
until up very was we were what when where which while who whom why will with would you your yours yourself yourselves""".split())


def terms(text):
    return [stem(w) for w in re.findall(r"\w+", fold(text)) if w not in STOP]


class BM25:
    """Okapi BM25 (k1 0.9, b 0.4: Anserini's defaults) over folded, stemmed words without stopwords."""

    def __init__(self, docs, k1=0.9, b=0.4):
        self.n = len(docs)
        toks = [terms(d) for d in docs]
        dl = np.array([len(t) for t in toks], dtype=np.float64); avg = dl.mean()
        post = collections.defaultdict(list)
        for i, t in enumerate(toks):
            for w, c in collections.Counter(t).items():
                post[w].append((i, c))
        self.docs, self.w = {}, {}
        for w, ps in post.items():
            d = np.array([p[0] for p in ps]); tf = np.array([p[1] for p in ps], dtype=np.float64)
            idf = math.log(1 + (self.n - len(ps) + 0.5) / (len(ps) + 0.5))
            self.docs[w] = d
            self.w[w] = idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl[d] / avg))

    def scores(self, query):
        s = np.zeros(self.n)
        for w, c in collections.Counter(terms(query)).items():
            if w in self.docs:
                s[self.docs[w]] += c * self.w[w]
        return s

    def top(self, query, k):
        s = self.scores(query)
        k = min(k, self.n)
        idx = np.argpartition(-s, k - 1)[:k]
        return idx[np.argsort(-s[idx], kind="stable")], s


def norm(s):
    import string
    s = s.lower(); s = "".join(ch for ch in s if ch not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", s).split())


def collect(files):
    paras, arts, qs = [], [], []
    for f in files:
        for art in load_squad(f):
            for p in art["paragraphs"]:
                pid = len(paras); paras.append(p["context"]); arts.append(f + "/" + art["title"])
                for q in p["qas"]:
                    qs.append({"id": q["id"], "q": q["question"], "pid": pid, "golds": [a["text"] for a in q["answers"]]})
    return paras, arts, qs


def main():
    t0 = time.time()
    tr_p, tr_a, tr_q = collect(["squad_v1.0_train.json.gz", "qed_nq_train.json"])
    dv_p, dv_a, dv_q = collect(["squadshifts_new_wiki_v1.0.json"])
    print(f"train {len(tr_p)} paragraphs {len(tr_q)} questions; dev {len(dv_p)} paragraphs {len(dv_q)} questions", file=sys.stderr)
    by_art = collections.defaultdict(list)
    for i, a in enumerate(tr_a):
        by_art[a].append(i)
    normed = [" " + norm(p) + " " for p in tr_p]
    bm = BM25(tr_p)
    for k, q in enumerate(tr_q):
        golds = [" " + norm(g) + " " for g in q["golds"] if norm(g)]
        ok = lambda j: j != q["pid"] and not any(g in normed[j] for g in golds)
        top, _ = bm.top(q["q"], 12)
        q["bm25_neg"] = [int(j) for j in top if ok(j)][:8]
        q["gold_bm25_rank"] = int(np.where(top == q["pid"])[0][0]) if q["pid"] in top else -1
        q["art_neg"] = [j for j in by_art[tr_a[q["pid"]]] if ok(j)]
        if k % 20000 == 0:
            print(f"bm25 train {k}/{len(tr_q)} {time.time() - t0:.0f}s", file=sys.stderr)
    dbm = BM25(dv_p)
    for q in dv_q:
        top, s = dbm.top(q["q"], 100)
        q["bm25"] = [int(j) for j in top]; q["bm25_scores"] = [float(s[j]) for j in top]
    texts = sorted(set(tr_p) | set(dv_p) | {q["q"] for q in tr_q + dv_q})
    tok = tokenize_rows([{"a": t} for t in texts], "ret_texts", 1000000)
    ids = {t: r["ids"][1:-1] for t, r in zip(texts, tok)}  # without [CLS] ... [SEP]
    for q in tr_q + dv_q:
        q["qids"] = ids[q["q"]]
    data = {"train": {"paras": [ids[p] for p in tr_p], "arts": tr_a, "qs": tr_q},
            "dev": {"paras": [ids[p] for p in dv_p], "arts": dv_a, "qs": dv_q, "texts": dv_p}}
    pickle.dump(data, open(os.path.join(OUT, "data.pkl"), "wb"))
    json.dump({"paras": dv_p, "arts": dv_a, "qs": [{"id": q["id"], "q": q["q"], "pid": q["pid"], "bm25": q["bm25"]} for q in dv_q]},
              open(os.path.join(OUT, "dev.json"), "w"))  # for eval_rank.ts
    r = lambda qs, k: float(np.mean([q["pid"] in q["bm25"][:k] for q in qs]))
    mrr = float(np.mean([1.0 / (q["bm25"].index(q["pid"]) + 1) if q["pid"] in q["bm25"][:10] else 0.0 for q in dv_q]))
    info = {"train_paragraphs": len(tr_p), "train_questions": len(tr_q), "dev_paragraphs": len(dv_p), "dev_questions": len(dv_q),
            "dev_bm25": {"recall@1": r(dv_q, 1), "recall@5": r(dv_q, 5), "recall@20": r(dv_q, 20), "recall@100": r(dv_q, 100), "mrr@10": mrr},
            "train_bm25_gold_in_top12": float(np.mean([q["gold_bm25_rank"] >= 0 for q in tr_q])), "seconds": round(time.time() - t0)}
    json.dump(info, open(os.path.join(OUT, "info.json"), "w"), indent=1)
    print(json.dumps(info), file=sys.stderr)


def dev_only(files, out):
    """A dev file in eval_rank.ts's format from other SQuAD-format files (e.g. QED/NQ dev, to choose a setting on
    without touching new_wiki): paragraphs de-duplicated by text, BM25's top 100 over them for each question."""
    paras, qs, at = [], [], {}
    for p_, a_, qs_ in [collect([f]) for f in files]:
        for q in qs_:
            text = p_[q["pid"]]
            if text not in at:
                at[text] = len(paras); paras.append(text)
            qs.append({"id": q["id"], "q": q["q"], "pid": at[text]})
    bm = BM25(paras)
    for q in qs:
        q["bm25"] = [int(j) for j in bm.top(q["q"], 100)[0]]
    json.dump({"paras": paras, "qs": qs}, open(out, "w"))
    r20 = float(np.mean([q["pid"] in q["bm25"][:20] for q in qs]))
    print(f"{len(paras)} paragraphs, {len(qs)} questions, BM25 recall@20 {r20:.3f} -> {out}", file=sys.stderr)


if __name__ == "__main__":
    # data_retrieval.py [--dev-only OUT.json FILE...]
    if len(sys.argv) > 2 and sys.argv[1] == "--dev-only":
        dev_only(sys.argv[3:], sys.argv[2])
    else:
        main()
