"""sts-demo data. Contrastive pairs (a package's short description vs the first sentences of its long one;
a WordNet gloss vs its example sentence or its lemmas), then STS Benchmark train (fine-tuning, threshold) and dev
(reported). Held-out ('test') packages and synsets are not used."""
import os, pickle, random, re, sys
from common import WORK, read_jsonl, split_of, tokenize_rows
from build_tokenizer import sts_rows


def main():
    rng = random.Random(11)
    pairs, seen = [], set()
    for p in read_jsonl(os.path.join(WORK, "packages.jsonl")):
        if split_of(p["source"]) != "train":
            continue
        first = p["long"].split("\n\n")[0]
        first = " ".join(re.split(r"(?<=[.!?])\s+", first)[:2])
        key = (p["short"].lower(), first)
        if len(first.split()) < 5 or key in seen:
            continue
        seen.add(key)
        pairs.append((p["short"], first))
    for s in read_jsonl(os.path.join(WORK, "wordnet.jsonl")):
        if split_of(s["id"]) != "train" or not s["gloss"]:
            continue
        if s["examples"]:
            pairs.append((s["examples"][0], s["gloss"]))
        elif len(s["words"]) > 1:
            pairs.append((", ".join(s["words"]), s["gloss"]))
    rng.shuffle(pairs)
    sents = sorted({x for pr in pairs for x in pr})
    sts = {sp: sts_rows(sp) for sp in ("train", "dev")}
    sents += sorted({x for sp in sts for _, a, b in sts[sp] for x in (a, b)})
    sents = sorted(set(sents))
    tok = tokenize_rows([{"a": s} for s in sents], "sts_sents", 128)
    ids = {s: r["ids"] for s, r in zip(sents, tok)}
    data = {"pairs": [(ids[a], ids[b]) for a, b in pairs],
            "train": [(sc, ids[a], ids[b], a, b) for sc, a, b in sts["train"]],
            "dev": [(sc, ids[a], ids[b], a, b) for sc, a, b in sts["dev"]]}
    print("contrastive pairs", len(pairs), "sts train", len(data["train"]), "dev", len(data["dev"]), file=sys.stderr)
    pickle.dump(data, open(os.path.join(WORK, "sts.pkl"), "wb"))


if __name__ == "__main__":
    main()
