"""Parse WordNet 3.0 (Debian wordnet-base) data files into .work/wordnet.jsonl: one synset per line."""
import json, os, re
from common import WORK

WN = "/usr/share/wordnet"
POS = {"noun": "n", "verb": "v", "adj": "a", "adv": "r"}


def main():
    out = []
    for name, pos in POS.items():
        with open(os.path.join(WN, "data." + name), encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("  "):
                    continue
                head, _, gloss = line.partition(" | ")
                f = head.split()
                offset, wcnt = f[0], int(f[3], 16)
                words = [f[4 + 2 * i].replace("_", " ") for i in range(wcnt)]
                words = [re.sub(r"\(.*\)$", "", w) for w in words]
                i = 4 + 2 * wcnt
                pcnt = int(f[i]); i += 1
                hyper = []
                for _ in range(pcnt):
                    sym, off, ppos = f[i], f[i + 1], f[i + 2]
                    if sym in ("@", "@i"):
                        hyper.append(ppos + off)
                    i += 4
                parts = [p.strip() for p in gloss.strip().split(";")]
                defs = [p for p in parts if not p.startswith('"')]
                exs = [p.strip('"') for p in parts if p.startswith('"')]
                out.append(dict(id=pos + offset, pos=pos, words=words, gloss="; ".join(defs).strip(),
                                examples=exs, hypernyms=hyper))
    with open(os.path.join(WORK, "wordnet.jsonl"), "w") as fh:
        for r in out:
            fh.write(json.dumps(r) + "\n")
    print("synsets", len(out))


if __name__ == "__main__":
    main()
