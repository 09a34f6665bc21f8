"""Word-piece embeddings by skip-gram with negative sampling (word2vec) on the shared corpus (.work/corpus.txt, i.e. the
prose, the QA training contexts and questions, Debian and WordNet text), to start the demo models' word embeddings
from something better than noise. Minutes on one thread, where masked-LM pre-training of a transformer would need hours
to get as far.

usage: sgns.py HIDDEN [EPOCHS]   -> .work/emb_<HIDDEN>.npy  [vocab, HIDDEN] float32
"""
import json, os, subprocess, sys, time
import numpy as np
import torch
from common import WORK, HERE, ROOT, seed_all

WINDOW, NEG, BATCH, SUB_T, SHARED = 5, 5, 8192, 1e-4, 128


def corpus_ids():
    """All documents of corpus.txt tokenized (no truncation), concatenated; doc[i] = document index of token i."""
    path = os.path.join(WORK, "corpus.ids.npz")
    if not os.path.exists(path):
        src, dst = os.path.join(WORK, "corpus.sg.in.jsonl"), os.path.join(WORK, "corpus.sg.tok.jsonl")
        with open(os.path.join(WORK, "corpus.txt")) as fh, open(src, "w") as o:
            for line in fh:
                o.write(json.dumps({"a": line.strip()}) + "\n")
        subprocess.run(["node", os.path.join(HERE, "tokenize.mjs"), os.path.join(WORK, "tokenizer.json"), src, dst, "1000000"],
                       check=True, cwd=ROOT)
        toks, docs = [], []
        with open(dst) as fh:
            for k, line in enumerate(fh):
                ids = json.loads(line)["ids"][1:-1]
                toks.append(np.array(ids, dtype=np.int32)); docs.append(np.full(len(ids), k, dtype=np.int32))
        np.savez(path, ids=np.concatenate(toks), doc=np.concatenate(docs))
        os.remove(src); os.remove(dst)
    z = np.load(path)
    return z["ids"], z["doc"]


def main():
    hidden = int(sys.argv[1]); epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    seed_all(); rng = np.random.default_rng(1)
    vocab = len(json.load(open(os.path.join(WORK, "tokenizer.json")))["model"]["vocab"])
    ids, doc = corpus_ids()
    counts = np.bincount(ids, minlength=vocab).astype(np.float64)
    freq = counts / counts.sum()
    keep_p = np.minimum(1.0, np.sqrt(SUB_T / np.maximum(freq, 1e-12)) + SUB_T / np.maximum(freq, 1e-12))
    noise = counts ** 0.75; noise /= noise.sum(); noise_cdf = np.cumsum(noise)
    W_in = (torch.rand(vocab, hidden) - 0.5) / hidden; W_out = torch.zeros(vocab, hidden)
    print(f"sgns: {len(ids)} tokens, vocab {vocab}, hidden {hidden}, {epochs} epochs", flush=True)
    t0 = time.time(); total_batches = None; done = 0
    for ep in range(epochs):
        keep = rng.random(len(ids)) < keep_p[ids]
        t, d = ids[keep], doc[keep]
        b = rng.integers(1, WINDOW + 1, len(t))
        cs, xs = [], []
        for o in range(1, WINDOW + 1):
            m = (d[:-o] == d[o:]) & (b[:-o] >= o)
            cs.append(t[:-o][m]); xs.append(t[o:][m])
            m2 = (d[:-o] == d[o:]) & (b[o:] >= o)
            cs.append(t[o:][m2]); xs.append(t[:-o][m2])
        c = np.concatenate(cs); x = np.concatenate(xs)
        perm = rng.permutation(len(c)); c, x = c[perm], x[perm]
        nb = len(c) // BATCH
        if total_batches is None:
            total_batches = nb * epochs
        loss_sum = 0.0
        for k in range(nb):
            lr = 0.025 * max(1e-4, 1 - done / total_batches)
            cc = torch.from_numpy(c[k * BATCH:(k + 1) * BATCH].astype(np.int64))
            xx = torch.from_numpy(x[k * BATCH:(k + 1) * BATCH].astype(np.int64))
            # negatives shared by the whole batch (SHARED of them, each weighted NEG / SHARED): one GEMM instead of
            # BATCH x NEG tiny dot products
            nn_ = torch.from_numpy(np.searchsorted(noise_cdf, rng.random(SHARED)).clip(0, vocab - 1).astype(np.int64))
            vi = W_in[cc]; vo = W_out[xx]; vn = W_out[nn_]
            sp = (vi * vo).sum(1); sn = vi @ vn.T  # [B], [B, SHARED]
            gp = torch.sigmoid(sp) - 1; gn = torch.sigmoid(sn) * (NEG / SHARED)
            gi = gp[:, None] * vo + gn @ vn
            W_out.index_add_(0, xx, gp[:, None] * vi * -lr)
            W_out.index_add_(0, nn_, (gn.T @ vi) * -lr)
            W_in.index_add_(0, cc, gi * -lr)
            if k % 200 == 0:
                loss_sum += float(-(torch.nn.functional.logsigmoid(sp).mean() + NEG * torch.nn.functional.logsigmoid(-sn).mean()))
            done += 1
            if k % 2000 == 0:
                print(f"epoch {ep} batch {k}/{nb} loss {loss_sum / (k // 200 + 1):.3f} {time.time() - t0:.0f}s", flush=True)
    w = W_in.numpy().astype(np.float32)
    np.save(os.path.join(WORK, f"emb_{hidden}.npy"), w)
    json.dump({"hidden": hidden, "epochs": epochs, "seconds": round(time.time() - t0), "tokens": int(len(ids))},
              open(os.path.join(WORK, f"emb_{hidden}.json"), "w"))
    # a sanity line: nearest neighbours of a few words
    tok = json.load(open(os.path.join(WORK, "tokenizer.json")))["model"]["vocab"]; inv = {i: s for s, i in tok.items()}
    wn = w / np.linalg.norm(w, axis=1, keepdims=True).clip(1e-6)
    for q in ("river", "king", "1990", "protein", "French"):
        if q in tok:
            sims = wn @ wn[tok[q]]
            print(q, "->", [inv[i] for i in np.argsort(-sims)[1:8]])
    print(f"sgns done in {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
