"""Train qa-demo (LexicalQA) on .work/qa/train.pkl; resumable; exports ONNX at the end.

usage: train_qa.py RUN                (RUN names the folder .work/qa/RUN: checkpoint, log, model.onnx)
env:   QA_LAYERS (2), QA_HIDDEN (128), QA_FFN (4 x hidden), QA_HEADS (4), QA_STEPS (planned schedule length),
       QA_STOP_AT (end this invocation after that many steps; a later call resumes from the checkpoint),
       BS (32), LR (1e-3), EMB_INIT (a .npy [vocab, hidden] to start the word embeddings from),
       EVAL_EVERY (seconds between quick dev checks, 1800), CKPT_EVERY (seconds, 600),
       QA_INIT (a weights.pt to start from, e.g. qa-demo's, for fine-tuning on feedback),
       FEEDBACK_FILE (a SQuAD 2.0 JSON mixed into training; FEEDBACK_HOLDOUT, default 0.2, of it is held out and written to
       RUN/feedback_holdout.jsonl, which eval_qa.ts --pairs reads, for a before/after measurement), FEEDBACK_REPEAT (times
       the feedback windows are repeated in the training rows, default 1).
The quick dev check is a Python copy of the gateway's answerSpans (softmax over [CLS] + context, p_start * p_end,
max 30 tokens, spans widened to words) on a fixed 1,000-question new_wiki sample; eval_qa.ts gives the real figures.
"""
import json, math, os, pickle, random, re, string, subprocess, sys, time, collections
import numpy as np
import torch
import torch.nn.functional as F
from common import WORK, HERE, ROOT, SEED, seed_all, read_jsonl, write_jsonl
from model import Config, LexicalQA, make_opt, Schedule

RUN = sys.argv[1]
QA = os.path.join(WORK, "qa")
OUT = os.path.join(QA, RUN)
os.makedirs(OUT, exist_ok=True)
env = os.environ.get
H = int(env("QA_HIDDEN", 128))
CFG = dict(vocab_size=None, hidden_size=H, num_hidden_layers=int(env("QA_LAYERS", 2)), num_attention_heads=int(env("QA_HEADS", 4)),
           intermediate_size=int(env("QA_FFN", 4 * H)), max_position_embeddings=int(env("QA_MAX_LEN", 256)))
STEPS = int(env("QA_STEPS", 20000)); STOP_AT = int(env("QA_STOP_AT", STEPS)); BS = int(env("BS", 32)); LR = float(env("LR", 1e-3))
EVAL_EVERY = float(env("EVAL_EVERY", 1800)); CKPT_EVERY = float(env("CKPT_EVERY", 600))
DEADLINE = float(env("DEADLINE", "inf"))


def log(*a):
    msg = f"[qa {RUN} {time.strftime('%H:%M:%S')}] " + " ".join(str(x) for x in a)
    print(msg, flush=True)
    with open(os.path.join(OUT, "train.log"), "a") as fh:
        fh.write(msg + "\n")


# ---------- SQuAD metric ----------
def squad_norm(s):
    s = s.lower(); s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1_em(pred, golds):
    if not golds:
        v = float(pred == "")
        return v, v
    best_em, best_f1 = 0.0, 0.0
    for g in golds:
        p, t = squad_norm(pred).split(), squad_norm(g).split()
        em = float(p == t)
        if not p or not t:
            f1 = float(p == t)
        else:
            common = collections.Counter(p) & collections.Counter(t); ns = sum(common.values())
            f1 = 0.0 if ns == 0 else 2 * (ns / len(p)) * (ns / len(t)) / (ns / len(p) + ns / len(t))
        best_em, best_f1 = max(best_em, em), max(best_f1, f1)
    return best_em, best_f1


# ---------- the gateway's post-processing (src/tasks/qa.ts answerSpans), for quick checks ----------
def softmax_masked(x, idx):
    v = x[idx]; v = np.exp(v - v.max()); return v / v.sum()


def best_span(windows, context, max_answer=30):
    """-> (best non-empty answer text, its score, null score = min over windows of p_start[CLS] * p_end[CLS])."""
    best, best_txt, null = -1.0, "", math.inf
    for w in windows:
        st, en = w["start"], w["end"]
        seq = w["seq"]
        ctx = [i for i in range(len(w["ids"])) if seq[i] == 1]
        if not ctx:
            continue
        idx = np.array([0] + ctx)
        ps, pe = softmax_masked(st, idx), softmax_masked(en, idx)
        null = min(null, ps[0] * pe[0])
        P = np.outer(ps[1:], pe[1:])
        n = len(ctx)
        P = np.triu(P) - np.triu(P, max_answer)
        k = int(P.argmax()); a, b = divmod(k, n)
        if P[a, b] > best:
            wid, offs = w["wid"], w["offs"]
            s_tok, e_tok = ctx[a], ctx[b]
            s_char, e_char = offs[s_tok][0], offs[e_tok][1]
            for i in ctx:  # widen to whole words
                if wid[i] is not None and wid[i] == wid[s_tok]:
                    s_char = min(s_char, offs[i][0])
                if wid[i] is not None and wid[i] == wid[e_tok]:
                    e_char = max(e_char, offs[i][1])
            best, best_txt = float(P[a, b]), context[s_char:e_char]
    return best_txt, best, null


def dev_sample():
    path = os.path.join(QA, "dev_sample.win.jsonl")
    if not os.path.exists(path):
        rng = random.Random(3)
        pos = rng.sample(read_jsonl(os.path.join(QA, "dev.jsonl")), 1000)
        neg = rng.sample(read_jsonl(os.path.join(QA, "dev_neg.jsonl")), 500)
        rows = pos + neg
        src = os.path.join(QA, "dev_sample.in.jsonl")
        write_jsonl(src, [{"id": r["id"] + ("" if r.get("golds") else "#neg"), "q": r["q"], "c": r["c"], "ans": None, "keep": "all", "offs": True} for r in rows])
        subprocess.run(["node", "--import", "tsx", os.path.join(HERE, "qa_windows.ts"), os.path.join(WORK, "tokenizer.json"), src, path,
                        str(CFG["max_position_embeddings"]), "64"], check=True, cwd=ROOT)
        write_jsonl(os.path.join(QA, "dev_sample.pairs.jsonl"), [{"id": r["id"] + ("" if r.get("golds") else "#neg"), "c": r["c"], "golds": r.get("golds", [])} for r in rows])
    pairs = {r["id"]: r for r in read_jsonl(os.path.join(QA, "dev_sample.pairs.jsonl"))}
    wins = collections.defaultdict(list)
    for w in read_jsonl(path):
        wins[w["id"]].append(w)
    return pairs, wins


def batch_tensors(rows):
    t = max(len(r[0]) for r in rows)
    ids = torch.zeros(len(rows), t, dtype=torch.long); att = torch.zeros_like(ids); tt = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        n = len(r[0]); ids[i, :n] = torch.from_numpy(np.asarray(r[0], dtype=np.int64)); att[i, :n] = 1; tt[i, r[1]:n] = 1
    return ids, att, tt


def quick_eval(model, pairs, wins):
    model.eval()
    flat = [w for ws in wins.values() for w in ws]
    order = sorted(range(len(flat)), key=lambda i: len(flat[i]["ids"]))
    with torch.no_grad():
        for k in range(0, len(order), 64):
            chunk = [flat[i] for i in order[k:k + 64]]
            ids, att, tt = batch_tensors([(w["ids"], w["tt"].index(1) if 1 in w["tt"] else len(w["tt"])) for w in chunk])
            s, e = model(ids, att, tt)
            for j, w in enumerate(chunk):
                n = len(w["ids"]); w["start"], w["end"] = s[j, :n].numpy(), e[j, :n].numpy()
    has, na = [], []
    for pid, p in pairs.items():
        txt, best, null = best_span(wins[pid], p["c"])
        em, f1 = f1_em(txt, p["golds"]) if p["golds"] else (0.0, 0.0)
        if p["golds"]:
            has.append((em, f1))
        na.append((null / (null + best) if best > 0 else 1.0, bool(p["golds"]), f1))
    # SQuAD 2.0 best threshold over na_prob on this sample (answerable + negatives)
    na.sort(key=lambda x: x[0])
    total = len(na); cur = sum(1.0 for x in na if not x[1])  # everything abstains: negatives right
    best_score, best_t = cur, 1.0
    for prob, answerable, f1 in na:  # answer every question with na_prob <= prob
        cur += f1 if answerable else -1.0
        if cur > best_score:
            best_score, best_t = cur, prob
    model.train()
    return {"has_em": 100 * np.mean([x[0] for x in has]), "has_f1": 100 * np.mean([x[1] for x in has]),
            "best_overall_f1": 100 * best_score / total, "no_answer_baseline": 100 * sum(1 for x in na if not x[1]) / total, "best_t": best_t}


# ---------- data ----------
def load_train():
    rows = pickle.load(open(os.path.join(QA, "train.pkl"), "rb"))
    fb = env("FEEDBACK_FILE")
    if fb:
        rows += feedback_rows(fb) * int(env("FEEDBACK_REPEAT", 1))
    return rows


def feedback_rows(path):
    """SQuAD 2.0 JSON (e.g. GET /v1/feedback/export?format=squad) -> training windows; FEEDBACK_HOLDOUT of the questions
    (by a hash of the id) are kept out and written to OUT/feedback_holdout.jsonl for a before/after measurement."""
    import hashlib
    data = json.load(open(path))["data"]
    hold = float(env("FEEDBACK_HOLDOUT", 0.2)); train, held = [], []
    for art in data:
        for p in art["paragraphs"]:
            for q in p["qas"]:
                h = int(hashlib.sha1(q["id"].encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
                ans = None if q.get("is_impossible") or not q.get("answers") else q["answers"][0]
                r = {"id": "fb-" + q["id"], "q": q["question"], "c": p["context"],
                     "ans": [ans["answer_start"], ans["answer_start"] + len(ans["text"])] if ans else None,
                     "golds": [a["text"] for a in q.get("answers", [])] if ans else []}
                (held if h < hold else train).append(r)
    write_jsonl(os.path.join(OUT, "feedback_holdout.jsonl"), held)
    src, dst = os.path.join(OUT, "feedback.in.jsonl"), os.path.join(OUT, "feedback.win.jsonl")
    write_jsonl(src, [{"id": r["id"], "q": r["q"], "c": r["c"], "ans": r["ans"], "keep": "answer+1"} for r in train])
    subprocess.run(["node", "--import", "tsx", os.path.join(HERE, "qa_windows.ts"), os.path.join(WORK, "tokenizer.json"), src, dst,
                    str(CFG["max_position_embeddings"]), "64"], check=True, cwd=ROOT)
    out = []
    for w in read_jsonl(dst):
        q_len = w["tt"].index(1) if 1 in w["tt"] else len(w["tt"])
        out.append((np.array(w["ids"], dtype=np.int32), q_len, w["s"], w["e"], w["id"]))
    log(f"feedback: {len(train)} questions -> {len(out)} training windows; {len(held)} held out")
    return out


def epoch_batches(rows, epoch):
    rng = random.Random(SEED + epoch)
    idx = list(range(len(rows))); rng.shuffle(idx)
    batches = []
    for c in range(0, len(idx), BS * 50):
        ch = sorted(idx[c:c + BS * 50], key=lambda i: len(rows[i][0]))
        batches += [ch[i:i + BS] for i in range(0, len(ch), BS)]
    rng.shuffle(batches)
    return batches


def make_model(vocab):
    CFG["vocab_size"] = vocab
    lex = np.load(os.path.join(QA, "lexicon.npz"))
    return Config(**CFG), LexicalQA(Config(**CFG), lex["norm_ids"], lex["idf"])


def export(model, path):
    model.eval()
    ids = torch.tensor([[2, 100, 200, 300, 3, 400, 200, 3], [2, 150, 3, 150, 3, 0, 0, 0]], dtype=torch.long)
    att = (ids != 0).long(); tt = torch.tensor([[0, 0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 0, 0, 0]])
    dyn = {n: {0: "batch", 1: "sequence"} for n in ("input_ids", "attention_mask", "token_type_ids", "start_logits", "end_logits")}
    with torch.enable_grad():
        torch.onnx.export(model, (ids, att, tt), path, input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=model.outputs, dynamic_axes=dyn, opset_version=14, do_constant_folding=True)


def main():
    seed_all()
    vocab = len(json.load(open(os.path.join(WORK, "tokenizer.json")))["model"]["vocab"])
    cfg, model = make_model(vocab)
    rows = load_train()
    opt = make_opt(model, LR); sch = Schedule(opt, LR, STEPS)
    ck = os.path.join(OUT, "ckpt.pt")
    state = {"step": 0, "epoch": 0, "batch": 0, "seconds": 0.0, "evals": []}
    if os.path.exists(ck):
        c = torch.load(ck)
        model.load_state_dict(c["model"]); opt.load_state_dict(c["opt"]); state = c["state"]; sch.step_n = state["step"]
        torch.set_rng_state(c["torch_rng"])
        log(f"resumed at step {state['step']} (epoch {state['epoch']}, batch {state['batch']}, {state['seconds']:.0f} s trained)")
    elif env("QA_INIT"):  # continue from a trained reader (e.g. fine-tuning on feedback)
        model.load_state_dict(torch.load(env("QA_INIT")))
        log("weights from", env("QA_INIT"))
    elif env("EMB_INIT"):
        w = torch.from_numpy(np.load(env("EMB_INIT"))).float()
        with torch.no_grad():
            model.enc.word.weight.copy_(w * (0.02 / w.std())); model.enc.word.weight[0].zero_()
        log("word embeddings from", env("EMB_INIT"))
    params = sum(p.numel() for p in model.parameters())
    log(f"{len(rows)} windows, config {CFG}, {params / 1e6:.2f} M parameters, schedule {STEPS} steps x {BS}, stop at {STOP_AT}")
    pairs, wins = dev_sample()

    def save():
        state["seconds"] += time.time() - t_mark[0]; t_mark[0] = time.time()
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "state": state, "torch_rng": torch.get_rng_state(),
                    "config": CFG}, ck + ".tmp")
        os.replace(ck + ".tmp", ck)

    model.train(); t_mark = [time.time()]; last_ck = last_ev = time.time(); ema = None; seen0 = state["step"]
    while state["step"] < STOP_AT and time.time() < DEADLINE:
        batches = epoch_batches(rows, state["epoch"])
        while state["batch"] < len(batches) and state["step"] < STOP_AT and time.time() < DEADLINE:
            b = [rows[i] for i in batches[state["batch"]]]
            ids, att, tt = batch_tensors(b)
            s, e = model(ids, att, tt)
            allowed = (tt == 1) & (att == 1)
            allowed[:, 0] = True
            allowed &= ids != 3  # the closing [SEP] is never an answer
            neg = (~allowed).float() * -10000.0
            ys = torch.tensor([r[2] for r in b]); ye = torch.tensor([r[3] for r in b])
            loss = (F.cross_entropy(s + neg, ys) + F.cross_entropy(e + neg, ye)) / 2
            opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step(); sch.step()
            state["step"] += 1; state["batch"] += 1
            ema = loss.item() if ema is None else 0.99 * ema + 0.01 * loss.item()
            if state["step"] % 200 == 0:
                el = state["seconds"] + time.time() - t_mark[0]
                log(f"step {state['step']}/{STEPS} epoch {state['epoch']} loss {ema:.3f} lr {opt.param_groups[0]['lr']:.2e} {el:.0f}s")
            if time.time() - last_ck > CKPT_EVERY:
                save(); last_ck = time.time()
            if time.time() - last_ev > EVAL_EVERY:
                r = quick_eval(model, pairs, wins); r["step"] = state["step"]; r["seconds"] = state["seconds"] + time.time() - t_mark[0]
                state["evals"].append(r); log("dev sample", json.dumps({k: round(v, 3) for k, v in r.items()}))
                last_ev = time.time(); t_mark[0] += 0  # eval time counts as training wall time
        if state["batch"] >= len(batches):
            state["epoch"] += 1; state["batch"] = 0
    save()
    r = quick_eval(model, pairs, wins); r["step"] = state["step"]; r["seconds"] = state["seconds"]
    state["evals"].append(r); log("dev sample", json.dumps({k: round(v, 3) for k, v in r.items()}))
    save()
    if state["step"] >= STEPS:
        torch.save(model.state_dict(), os.path.join(OUT, "weights.pt"))
        export(model, os.path.join(OUT, "model.onnx"))
        json.dump(cfg.to_hf(architectures=["BertForQuestionAnswering"]), open(os.path.join(OUT, "config.json"), "w"), indent=2)
        json.dump({"config": CFG, "steps": state["step"], "epochs": state["epoch"] + state["batch"] / max(1, len(epoch_batches(rows, 0))),
                   "batch_size": BS, "lr": LR, "seconds": round(state["seconds"]), "parameters": params, "train_windows": len(rows),
                   "evals": state["evals"]}, open(os.path.join(OUT, "train_summary.json"), "w"), indent=1)
        log("exported", os.path.join(OUT, "model.onnx"))


if __name__ == "__main__":
    main()
