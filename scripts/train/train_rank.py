"""Train rerank-demo (cross-encoder, LexicalRanker) or retrieve-demo (bi-encoder, EmbedModel) on .work/ret/data.pkl;
resumable from OUT/ckpt.pt; exports ONNX at the end.

usage: train_rank.py rerank|retrieve RUN
env:   STEPS (schedule length), STOP_AT, LR, GROUP (rerank: passages per question, 1 positive + GROUP-1 negatives, 4),
       QB (questions per step: rerank 8, retrieve 32), INIT (rerank: a qa-demo weights.pt; retrieve: an encoder state dict
       .pt, a .npy of word embeddings, or an exported model.onnx with its config.json beside it, to continue a shipped
       model on a new schedule), HIDDEN/LAYERS/FFN (retrieve, when not initialised from an encoder),
       P_MAX (tokens of a passage in training, 254), TAU (retrieve temperature, 0.05), EVAL_EVERY, CKPT_EVERY (seconds).
rerank: listwise softmax over each question's group (its paragraph, BM25's top wrong paragraphs, others of its article).
retrieve: question and paragraph embedded alone (mean pooling, L2-normalised); InfoNCE of each question against every
paragraph in the step (its own, the other questions', one BM25 hard negative each), DPR-style.
"""
import json, math, os, pickle, random, sys, time
import numpy as np
import torch
import torch.nn.functional as F
from common import WORK, SEED, seed_all
from model import Config, Encoder, EmbedModel, LexicalRanker, LexicalQA, make_opt, Schedule, masked_mean, load_from_onnx

KIND, RUN = sys.argv[1], sys.argv[2]
OUT = os.path.join(WORK, "ret", RUN)
os.makedirs(OUT, exist_ok=True)
env = os.environ.get
STEPS = int(env("STEPS", 4000)); STOP_AT = int(env("STOP_AT", STEPS)); LR = float(env("LR", 5e-4 if KIND == "rerank" else 1e-3))
GROUP = int(env("GROUP", 4)); QB = int(env("QB", 8 if KIND == "rerank" else 32)); P_MAX = int(env("P_MAX", 254)); TAU = float(env("TAU", 0.05))
EVAL_EVERY = float(env("EVAL_EVERY", 1800)); CKPT_EVERY = float(env("CKPT_EVERY", 600)); MAX_LEN = 256


def log(*a):
    msg = f"[{KIND} {RUN} {time.strftime('%H:%M:%S')}] " + " ".join(str(x) for x in a)
    print(msg, flush=True)
    with open(os.path.join(OUT, "train.log"), "a") as fh:
        fh.write(msg + "\n")


def pair(q, p):
    q = q[:62]
    p = p[:MAX_LEN - len(q) - 3]
    return [2] + q + [3] + p + [3], len(q) + 2


def single(x, n=MAX_LEN):
    return [2] + x[:n - 2] + [3]


def pad(seqs, qlens=None):
    t = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), t, dtype=torch.long); att = torch.zeros_like(ids); tt = torch.zeros_like(ids)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s); att[i, :len(s)] = 1
        if qlens is not None:
            tt[i, qlens[i]:len(s)] = 1
    return ids, att, tt


def build_model(vocab):
    if KIND == "rerank":
        qa_dir = os.path.dirname(env("INIT"))
        cfgd = json.load(open(os.path.join(qa_dir, "train_summary.json")))["config"]
        lex = np.load(os.path.join(WORK, "qa", "lexicon.npz"))
        m = LexicalRanker(Config(**cfgd), lex["norm_ids"], lex["idf"])
        return cfgd, m
    init = env("INIT", "")
    if init.endswith(".pt"):
        ck = torch.load(init)
        cfgd = ck["config"]; m = EmbedModel(Config(**cfgd)); m.enc.load_state_dict(ck["encoder"])
        return cfgd, m
    if init.endswith(".onnx"):  # continue an exported retriever (its config.json beside it): a new schedule from its weights
        hf = json.load(open(os.path.join(os.path.dirname(init), "config.json")))
        cfgd = {k: hf[k] for k in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                                   "max_position_embeddings")}
        m = EmbedModel(Config(**cfgd)); load_from_onnx(m, init)
        return cfgd, m
    H = int(env("HIDDEN", 128))
    cfgd = dict(vocab_size=vocab, hidden_size=H, num_hidden_layers=int(env("LAYERS", 2)), num_attention_heads=4,
                intermediate_size=int(env("FFN", 4 * H)), max_position_embeddings=MAX_LEN)
    m = EmbedModel(Config(**cfgd))
    if init.endswith(".npy"):
        w = torch.from_numpy(np.load(init)).float()
        with torch.no_grad():
            m.enc.word.weight.copy_(w * (0.02 / w.std())); m.enc.word.weight[0].zero_()
    return cfgd, m


def embed(model, seqs, bs=64):
    out = []
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    res = [None] * len(seqs)
    with torch.no_grad():
        for k in range(0, len(order), bs):
            idx = order[k:k + bs]
            ids, att, tt = pad([seqs[i] for i in idx])
            e = F.normalize(masked_mean(model(ids, att, tt), att), dim=-1)
            for j, i in enumerate(idx):
                res[i] = e[j]
    return torch.stack(res)


def rank_metrics(ranked, gold):
    """ranked: list of candidate lists (best first); gold: list of gold ids."""
    mrr, r1, r5, r20 = [], [], [], []
    for cand, g in zip(ranked, gold):
        r = cand.index(g) if g in cand else None
        mrr.append(1.0 / (r + 1) if r is not None and r < 10 else 0.0)
        r1.append(float(r is not None and r < 1)); r5.append(float(r is not None and r < 5)); r20.append(float(r is not None and r < 20))
    return {"mrr@10": float(np.mean(mrr)), "recall@1": float(np.mean(r1)), "recall@5": float(np.mean(r5)), "recall@20": float(np.mean(r20))}


def quick_eval(model, dev, n=600, k=20):
    model.eval()
    rng = random.Random(5); qs = rng.sample(dev["qs"], n)
    if KIND == "rerank":
        ranked = []
        seqs, ql = [], []
        for q in qs:
            for j in q["bm25"][:k]:
                s, l = pair(q["qids"], dev["paras"][j]); seqs.append(s); ql.append(l)
        scores = []
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i])); sc = [0.0] * len(seqs)
        with torch.no_grad():
            for b in range(0, len(order), 64):
                idx = order[b:b + 64]
                o = model(*pad([seqs[i] for i in idx], [ql[i] for i in idx]))[:, 0]
                for jj, i in enumerate(idx):
                    sc[i] = float(o[jj])
        for a, q in enumerate(qs):
            s = sc[a * k:(a + 1) * k]
            ranked.append([q["bm25"][i] for i in sorted(range(k), key=lambda i: -s[i])])
        res = rank_metrics(ranked, [q["pid"] for q in qs])
    else:
        P = embed(model, [single(p) for p in dev["paras"]])
        Q = embed(model, [single(q["qids"]) for q in qs])
        S = Q @ P.T
        ranked = [list(map(int, torch.argsort(-S[i])[:100])) for i in range(len(qs))]
        res = rank_metrics(ranked, [q["pid"] for q in qs])
        rrf = []
        for i, q in enumerate(qs):
            sc = {}
            for r, j in enumerate(q["bm25"][:100]):
                sc[j] = sc.get(j, 0) + 1 / (60 + r + 1)
            for r, j in enumerate(ranked[i]):
                sc[j] = sc.get(j, 0) + 1 / (60 + r + 1)
            rrf.append(sorted(sc, key=lambda j: -sc[j])[:100])
        res["hybrid"] = rank_metrics(rrf, [q["pid"] for q in qs])
    res["bm25"] = rank_metrics([q["bm25"] for q in qs], [q["pid"] for q in qs])
    model.train()
    return res


def main():
    seed_all(); rng = random.Random(SEED)
    data = pickle.load(open(os.path.join(WORK, "ret", "data.pkl"), "rb"))
    tr, dev = data["train"], data["dev"]
    vocab = len(json.load(open(os.path.join(WORK, "tokenizer.json")))["model"]["vocab"])
    cfgd, model = build_model(vocab)
    opt = make_opt(model, LR); sch = Schedule(opt, LR, STEPS, warmup=0.03)
    ck = os.path.join(OUT, "ckpt.pt")
    state = {"step": 0, "seconds": 0.0, "evals": [], "rng": None}
    if os.path.exists(ck):
        c = torch.load(ck)
        model.load_state_dict(c["model"]); opt.load_state_dict(c["opt"]); state = c["state"]; sch.step_n = state["step"]
        torch.set_rng_state(c["torch_rng"]); rng.setstate(state["rng"])
        log(f"resumed at step {state['step']}")
    elif KIND == "rerank":
        sd = torch.load(env("INIT")); missing = model.load_state_dict(sd, strict=False)
        log("from", env("INIT"), "new:", missing.missing_keys)
    qs = [q for q in tr["qs"] if q["bm25_neg"] or q["art_neg"]]
    log(f"{len(qs)} training questions, config {cfgd}, {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, "
        f"{STEPS} steps x {QB} questions")
    if state["step"] == 0:
        r = quick_eval(model, dev); r["step"] = 0; state["evals"].append(r); log("dev sample", json.dumps(r))

    def save():
        state["seconds"] += time.time() - t_mark[0]; t_mark[0] = time.time(); state["rng"] = rng.getstate()
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "state": state, "torch_rng": torch.get_rng_state(), "config": cfgd}, ck + ".tmp")
        os.replace(ck + ".tmp", ck)

    model.train(); t_mark = [time.time()]; last_ck = last_ev = time.time(); ema = None
    while state["step"] < STOP_AT:
        batch = [qs[rng.randrange(len(qs))] for _ in range(QB)]
        if KIND == "rerank":
            seqs, ql = [], []
            for q in batch:
                negs = []
                bm = q["bm25_neg"][:]; art = [j for j in q["art_neg"] if j not in bm]
                while len(negs) < GROUP - 1 and (bm or art):
                    src = bm if (bm and (not art or rng.random() < 0.67)) else art
                    negs.append(src.pop(rng.randrange(min(len(src), 4)) if src is bm else rng.randrange(len(src))))
                while len(negs) < GROUP - 1:  # rare: too few hard negatives, use random paragraphs
                    negs.append(rng.randrange(len(tr["paras"])))
                for j in [q["pid"]] + negs:
                    s, l = pair(q["qids"], tr["paras"][j]); seqs.append(s); ql.append(l)
            o = model(*pad(seqs, ql))[:, 0].view(QB, GROUP)
            loss = F.cross_entropy(o, torch.zeros(QB, dtype=torch.long))
        else:
            ps = [q["pid"] for q in batch]
            hard = []
            for q in batch:
                c = q["bm25_neg"][:3] or q["art_neg"]
                hard.append(c[rng.randrange(len(c))])
            pids = ps + hard
            qi, qa, qt = pad([single(q["qids"], 64) for q in batch])
            pi, pa, pt = pad([single(tr["paras"][j], P_MAX + 2) for j in pids])
            eq = F.normalize(masked_mean(model(qi, qa, qt), qa), dim=-1)
            ep = F.normalize(masked_mean(model(pi, pa, pt), pa), dim=-1)
            sim = eq @ ep.T / TAU
            same = torch.tensor([[pids[j] == ps[i] and j != i for j in range(len(pids))] for i in range(QB)])
            sim = sim.masked_fill(same, -1e4)  # a duplicate of the positive is not a negative
            loss = F.cross_entropy(sim, torch.arange(QB))
        opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step(); sch.step()
        state["step"] += 1
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if state["step"] % 100 == 0:
            log(f"step {state['step']}/{STEPS} loss {ema:.4f} lr {opt.param_groups[0]['lr']:.2e} {state['seconds'] + time.time() - t_mark[0]:.0f}s")
        if time.time() - last_ck > CKPT_EVERY:
            save(); last_ck = time.time()
        if time.time() - last_ev > EVAL_EVERY:
            r = quick_eval(model, dev); r["step"] = state["step"]; state["evals"].append(r); log("dev sample", json.dumps(r)); last_ev = time.time()
    save()
    if state["step"] >= STEPS:
        r = quick_eval(model, dev); r["step"] = state["step"]; state["evals"].append(r); log("dev sample", json.dumps(r)); save()
        torch.save(model.state_dict(), os.path.join(OUT, "weights.pt"))
        export(model, os.path.join(OUT, "model.onnx"))
        extra = ({"architectures": ["BertForSequenceClassification"], "id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}, "num_labels": 1}
                 if KIND == "rerank" else {"architectures": ["BertModel"]})
        json.dump(Config(**cfgd).to_hf(**extra), open(os.path.join(OUT, "config.json"), "w"), indent=2)
        json.dump({"config": cfgd, "steps": state["step"], "questions_per_step": QB, "group": GROUP if KIND == "rerank" else None,
                   "lr": LR, "seconds": round(state["seconds"]), "parameters": sum(p.numel() for p in model.parameters()),
                   "train_questions": len(qs), "init": env("INIT"), "evals": state["evals"]}, open(os.path.join(OUT, "train_summary.json"), "w"), indent=1)
        log("exported")


def export(model, path):
    model.eval()
    ids = torch.tensor([[2, 100, 200, 300, 3, 400, 200, 3], [2, 150, 3, 150, 3, 0, 0, 0]], dtype=torch.long)
    att = (ids != 0).long(); tt = torch.tensor([[0, 0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 0, 0, 0]])
    names = model.outputs
    dyn = {n: {0: "batch", 1: "sequence"} for n in ("input_ids", "attention_mask", "token_type_ids")}
    for n in names:
        dyn[n] = {0: "batch", 1: "sequence"} if n == "last_hidden_state" else {0: "batch"}
    with torch.enable_grad():
        torch.onnx.export(model, (ids, att, tt), path, input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=names, dynamic_axes=dyn, opset_version=14, do_constant_folding=True)


if __name__ == "__main__":
    main()
