"""classify-demo data: a Debian package's description -> its archive section, over ten topical sections.
Split by source package; identical descriptions are kept once."""
import collections, os, pickle, sys
from common import WORK, TOPICAL, read_jsonl, split_of, tokenize_rows


def main():
    rows, seen = [], set()
    for p in read_jsonl(os.path.join(WORK, "packages.jsonl")):
        sec = p["section"].split("/")[-1]
        if sec not in TOPICAL:
            continue
        text = p["short"] + ". " + p["long"].replace("\n\n", " ")
        if text in seen:
            continue
        seen.add(text)
        rows.append({"a": text, "label": TOPICAL.index(sec), "split": split_of(p["source"]), "name": p["name"]})
    rows = tokenize_rows(rows, "classify", 128)
    data = {s: [r for r in rows if r["split"] == s] for s in ("train", "dev", "test")}
    for s, d in data.items():
        print(s, len(d), collections.Counter(TOPICAL[r["label"]] for r in d).most_common(3), file=sys.stderr)
    pickle.dump(data, open(os.path.join(WORK, "classify.pkl"), "wb"))


if __name__ == "__main__":
    main()
