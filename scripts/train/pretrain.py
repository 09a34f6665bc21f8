"""Masked-language-model pre-training of the shared encoder (sts-demo, classify-demo, essay-demo*) on the shared corpus
(.work/corpus.txt: English prose, QA training contexts and questions, Debian descriptions, WordNet glosses, STS train
sentences; held-out 'test' packages and synsets excluded). The word embeddings start from the skip-gram vectors
(.work/emb_<hidden>.npy, sgns.py) when present. Writes .work/pretrained.pt.

usage: pretrain.py STEPS [--resume] [--stop-at N]
  --resume continues from .work/pretrained.pt with a fresh schedule of STEPS steps;
  --stop-at N ends after N of those steps (same weights as a run that was stopped there).
"""
import json, os, random, subprocess, sys, time
import numpy as np
import torch
import torch.nn.functional as F
from common import WORK, HERE, ROOT, seed_all, read_jsonl
from model import Config, MLMModel, make_opt, Schedule, PAD, CLS, SEP, MASK

SEQ = int(os.environ.get("SEQ", 128))


def tokenized_corpus():
    out = os.path.join(WORK, "corpus.tok.jsonl")
    if not os.path.exists(out):
        src = os.path.join(WORK, "corpus.in.jsonl")
        with open(os.path.join(WORK, "corpus.txt")) as fh, open(src, "w") as o:
            for line in fh:
                o.write(json.dumps({"a": line.strip()}) + "\n")
        subprocess.run(["node", os.path.join(HERE, "tokenize.mjs"), os.path.join(WORK, "tokenizer.json"), src, out, "512"],
                       check=True, cwd=ROOT)
    return [r["ids"] for r in read_jsonl(out)]


def pack(docs, rng):
    """Concatenate tokenized documents ([CLS] a [SEP] b [SEP] ...) into sequences of up to SEQ tokens."""
    rng.shuffle(docs)
    seqs, cur = [], [CLS]
    for d in docs:
        body = d[1:-1]
        for i in range(0, len(body), SEQ - 2):
            part = body[i:i + SEQ - 2]
            if len(cur) + len(part) + 1 > SEQ:
                seqs.append(cur); cur = [CLS]
            cur += part + [SEP]
    seqs.append(cur)
    return seqs


def mask_tokens(ids, rng_t, vocab):
    labels = ids.clone()
    special = (ids == PAD) | (ids == CLS) | (ids == SEP)
    prob = torch.full(ids.shape, 0.15); prob[special] = 0
    m = torch.bernoulli(prob, generator=rng_t).bool()
    labels[~m] = -100
    r = torch.rand(ids.shape, generator=rng_t)
    ids = ids.clone()
    ids[m & (r < 0.8)] = MASK
    rnd = m & (r >= 0.8) & (r < 0.9)
    ids[rnd] = torch.randint(5, vocab, ids.shape, generator=rng_t)[rnd]
    return ids, labels


def main():
    steps = int(sys.argv[1]); bs = int(os.environ.get("BS", 64))
    seed_all(); rng = random.Random(1); g = torch.Generator().manual_seed(2)
    cfg = Config(**json.load(open(os.path.join(HERE, "encoder.json"))))
    docs = tokenized_corpus()
    model = MLMModel(cfg); model.train()
    emb = os.path.join(WORK, f"emb_{cfg.hidden_size}.npy")
    if "--resume" not in sys.argv and os.path.exists(emb):
        w = torch.from_numpy(np.load(emb)).float()
        with torch.no_grad():
            model.enc.word.weight.copy_(w * (0.02 / w.std())); model.enc.word.weight[0].zero_()
        print("word embeddings from", emb, flush=True)
    ck = os.path.join(WORK, "pretrained.pt"); prev = {"steps": 0, "seconds": 0.0}
    if "--resume" in sys.argv:
        prev = torch.load(ck); model.load_state_dict(prev["mlm"])
        rng = random.Random(prev["steps"]); g = torch.Generator().manual_seed(prev["steps"])
    opt = make_opt(model, 1e-3); sch = Schedule(opt, 1e-3, steps)
    seqs, pos = pack(docs, rng), 0
    print(f"pretrain: {len(docs)} docs -> {len(seqs)} sequences of <= {SEQ} tokens; {steps} steps x {bs}", flush=True)
    t0 = time.time(); ema = None
    stop = int(sys.argv[sys.argv.index("--stop-at") + 1]) if "--stop-at" in sys.argv else steps
    for step in range(1, stop + 1):
        if pos + bs > len(seqs):
            seqs, pos = pack(docs, rng), 0
        batch = seqs[pos:pos + bs]; pos += bs
        t = max(len(s) for s in batch)
        ids = torch.zeros(len(batch), t, dtype=torch.long); att = torch.zeros_like(ids)
        for i, s in enumerate(batch):
            ids[i, :len(s)] = torch.tensor(s); att[i, :len(s)] = 1
        inp, lab = mask_tokens(ids, g, cfg.vocab_size)
        h = model(inp, att, torch.zeros_like(ids))
        sel = lab != -100
        loss = F.cross_entropy(model.logits(h[sel]), lab[sel])
        opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step(); sch.step()
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if step % 100 == 0 or step == steps:
            print(f"step {step} loss {ema:.3f} {time.time() - t0:.0f}s", flush=True)
        if step % 500 == 0 or step == stop:
            torch.save({"mlm": model.state_dict(), "encoder": model.enc.state_dict(), "steps": prev["steps"] + step,
                        "seconds": prev["seconds"] + time.time() - t0, "loss": ema, "seq": SEQ, "batch": bs}, ck + ".tmp")
            os.replace(ck + ".tmp", ck)


if __name__ == "__main__":
    main()
