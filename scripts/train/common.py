"""Shared paths, seeds and the BERT-style encoder used by every demo model."""
import hashlib, json, math, os, random
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.environ.get("TRAIN_WORK", os.path.join(HERE, ".work"))
ROOT = os.path.dirname(os.path.dirname(HERE))
MODELS = os.path.join(ROOT, "models")
os.makedirs(WORK, exist_ok=True)

SEED = 20261122


def seed_all(seed=SEED):
    random.seed(seed)
    np.random.seed(seed % (2**32))
    try:
        import torch
        torch.manual_seed(seed)
        torch.set_num_threads(1)
    except ImportError:
        pass


def split_of(source, dev=0.1, test=0.1):
    """Deterministic split by Debian *source* package so sibling binaries never straddle splits."""
    h = int(hashlib.sha1(source.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if h < test else "dev" if h < test + dev else "train"


def read_jsonl(path):
    with open(path) as fh:
        return [json.loads(l) for l in fh]


def write_jsonl(path, rows):
    with open(path, "w") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")


def tokenize_rows(rows, name, max_len, tokenizer=None):
    """Tokenize rows ({a, b?, ans?}) with the gateway's own Rust tokenizer (tokenize.mjs; `tokenizer`, default the
    work folder's tokenizer.json); returns the token rows merged with the input rows."""
    import subprocess
    src, dst = os.path.join(WORK, name + ".in.jsonl"), os.path.join(WORK, name + ".tok.jsonl")
    write_jsonl(src, rows)
    subprocess.run(["node", os.path.join(HERE, "tokenize.mjs"), tokenizer or os.path.join(WORK, "tokenizer.json"), src, dst, str(max_len)],
                   check=True, cwd=ROOT)
    toks = read_jsonl(dst)
    assert len(toks) == len(rows)
    for r, t in zip(rows, toks):
        r.update(t)
    return rows


TOPICAL = ["admin", "devel", "games", "graphics", "net", "science", "sound", "text", "utils", "x11"]


# ---------- metrics (finetune.py, lexical.py) ----------
def rankdata(x):
    x = np.asarray(x, dtype=float); order = np.argsort(x, kind="mergesort"); r = np.empty(len(x))
    r[order] = np.arange(len(x)); xs = x[order]; i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and xs[j + 1] == xs[i]:
            j += 1
        r[order[i:j + 1]] = (i + j) / 2.0; i = j + 1
    return r


def pearson(a, b):
    return float(np.corrcoef(np.asarray(a, float), np.asarray(b, float))[0, 1])


def spearman(a, b):
    return pearson(rankdata(a), rankdata(b))


def similar_threshold(cosines, gold):
    """(accuracy, cut): the cosine cut (candidates rounded to 3 decimals) that best separates gold similarity >= 3.0
    from the rest (ties: the highest cut), with its accuracy."""
    c, y = np.asarray(cosines), np.asarray(gold) >= 3.0
    return max((float(np.mean((c >= t) == y)), float(t)) for t in np.unique(np.round(c, 3)))
