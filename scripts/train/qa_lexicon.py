"""Constant tables for LexicalQA's in-graph lexical-match features, derived from tokenizer.json and the training contexts.

- norm_ids[vocab]: a class per word piece: lower-cased, accents stripped, and for whole-word pieces a few regular English
  suffixes folded (plural -s/-es/-ies, -ed, -ing, -ly), so 'Rivers' matches 'river' and 'Élan' matches 'elan'.
  Continuation pieces (##x) only fold case and accents. Special tokens get classes of their own.
- idf[vocab]: inverse document frequency of the piece's class over the distinct training contexts, scaled to [0, 1].
Writes .work/qa/lexicon.npz.
"""
import json, os, pickle, sys, unicodedata
import numpy as np
from common import WORK

VOWELS = set("aeiouy")


def fold(s):
    return "".join(c for c in unicodedata.normalize("NFD", s.lower()) if unicodedata.category(c) != "Mn")


def stem(w):
    if not w.isalpha() or len(w) < 4:
        return w
    for suf, rep, minlen in (("ies", "y", 5), ("sses", "ss", 6), ("es", "", 6), ("s", "", 4), ("ing", "", 6), ("ed", "", 4), ("ly", "", 6)):
        if w.endswith(suf) and len(w) >= minlen:
            if suf == "s" and (w.endswith("ss") or w.endswith("us") or w.endswith("is")):
                continue
            base = w[: len(w) - len(suf)] + rep
            if not (set(base) & VOWELS):
                continue
            if suf == "es" and not base.endswith(("s", "x", "z", "ch", "sh")):
                base = w[:-1]  # 'boxes' -> 'box' but 'homes' -> 'home'
            if suf in ("ing", "ed") and len(base) >= 3 and base[-1] == base[-2] and base[-1] not in "lsz":
                base = base[:-1]  # running -> run, stopped -> stop
            w = base
            break
    return w[:-1] if len(w) >= 3 and w.endswith("e") else w  # 'make', 'making' -> 'mak'; 'homes' -> 'hom'


def norm_key(tok):
    if tok.startswith("[") and tok.endswith("]"):
        return "\0" + tok
    if tok.startswith("##"):
        return "##" + fold(tok[2:])
    return stem(fold(tok))


def build(tokenizer_path, rows):
    vocab = json.load(open(tokenizer_path))["model"]["vocab"]
    n = len(vocab)
    keys = [None] * n
    for t, i in vocab.items():
        keys[i] = norm_key(t)
    cls = {}
    norm_ids = np.array([cls.setdefault(k, len(cls)) for k in keys], dtype=np.int64)
    df = np.zeros(len(cls)); seen = set(); docs = 0
    for ids, qlen, *_ in rows:
        ctx = ids[qlen:-1]
        h = hash(ctx.tobytes())
        if h in seen:
            continue
        seen.add(h); docs += 1
        df[np.unique(norm_ids[ctx])] += 1
    idf_cls = np.log((docs + 1) / (df + 1)) / np.log(docs + 1)
    return norm_ids, idf_cls[norm_ids].astype(np.float32), len(cls), docs


def main():
    rows = pickle.load(open(os.path.join(WORK, "qa", "train.pkl"), "rb"))
    norm_ids, idf, ncls, docs = build(os.path.join(WORK, "tokenizer.json"), rows)
    np.savez(os.path.join(WORK, "qa", "lexicon.npz"), norm_ids=norm_ids, idf=idf)
    print(f"lexicon: {len(norm_ids)} pieces -> {ncls} classes; idf over {docs} distinct training contexts", file=sys.stderr)


if __name__ == "__main__":
    main()
