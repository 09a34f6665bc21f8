"""Calibrate a packaged retriever's hybrid keyword weight and write it into its zip (the last stage of build-all.sh).

Collections' hybrid retrieval fuses BM25's list and the embedding model's by reciprocal rank fusion, BM25's list weighted
w and the model's 1 - w (src/collections/fusion.ts; 0.5 is plain RRF). A weak retriever fused at 0.5 pulls BM25's
right answers down: retrieve-demo's plain RRF recall@20 is below BM25's alone. This stage chooses w on a set that is
neither trained on nor the development set, QED/NQ dev (`qed_nq_dev.json`: 1,200 Natural Questions over their 1,193
Wikipedia passages), as the weight with the best recall@20 (ties: best MRR@10), then reports new_wiki dev at that
weight, and rewrites the zip: gateway.json gets `hybrid_keyword_weight` and the given version, MODEL_CARD.md a section
with both sweeps. model.onnx and every other file are copied byte for byte; each entry keeps its timestamp. The figures
also go to $TRAIN_WORK/ret/calibration-<name>.json (models/README.md's row).

usage: calibrate_hybrid.py --version 2.1.0 retrieve-demo [retrieve-demo-int8 ...]   (zips under models/)
"""
import argparse, json, os, subprocess, sys, zipfile
from common import WORK

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RET = os.path.join(WORK, "ret")
WEIGHTS = [round(0.05 * i, 2) for i in range(1, 20)]
SECTION = "## Hybrid retrieval: the keyword weight"


def dev_file(name, source):
    path = os.path.join(RET, name)
    if not os.path.exists(path):
        subprocess.run([sys.executable, os.path.join(HERE, "data_retrieval.py"), "--dev-only", path, source], check=True)
    return path


def evaluate(zip_path, dev, weights=None, model=None):
    """eval_rank.ts retrieve on a dev file: the zip's model, or `model` (another graph) with the zip's other files."""
    out = (model + "." if model else os.path.join(RET, "calibrate-" + os.path.basename(zip_path) + "-")) + os.path.basename(dev)
    cmd = ["node", "--import", "tsx", os.path.join(HERE, "eval_rank.ts"), "retrieve", "--zip", zip_path, "--dev", dev, "--out", out]
    cmd += (["--model", model] if model else []) + (["--keyword-weights", ",".join(str(w) for w in weights)] if weights else [])
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return json.load(open(out))


def put_section(card, title, text, before):
    """The card with `text` (a section headed `title`) in place of its old section of that title, else inserted before
    the first heading of `before` the card has."""
    if title in card:
        head, rest = card.split(title, 1)
        nxt = rest.find("\n## ")
        return head + text + ("\n" + rest[nxt + 1:] if nxt >= 0 else "")
    at = next(card.index(b) for b in before if b in card)
    return card[:at] + text + "\n" + card[at:]


def row(label, m, bold=False):
    f = (lambda x: f"**{x:.3f}**") if bold else (lambda x: f"{x:.3f}")
    return f"| {label} | {f(m['recall@5'])} | {f(m['recall@20'])} | {m['recall@100']:.3f} | {m['mrr@10']:.3f} |"


def section(name, w, qed, nw):
    sweep = qed["hybrid_by_keyword_weight"]
    shown = [x for x in WEIGHTS if x in (0.5, w) or abs(x * 10 - round(x * 10)) < 1e-9]
    L = [SECTION, "",
         "Collections fuse BM25's and this model's lists by reciprocal rank fusion, BM25 weighted w and the model 1 - w "
         f"(0.5 is plain RRF). gateway.json `hybrid_keyword_weight` is **{w}**: the weight with the best recall@20 on QED/NQ dev "
         f"({qed['questions']:,} Natural Questions over their {int(qed['corpus'].split()[1]):,} passages; never trained on, "
         "and not the development set), chosen from 0.05 to 0.95 in steps of 0.05 (`scripts/train/calibrate_hybrid.py`). "
         "A request can set its own (`keyword_weight` on search and collection QA).", "",
         "QED/NQ dev (where it was chosen):", "",
         "| | recall@5 | recall@20 | recall@100 | MRR@10 |", "|---|---|---|---|---|",
         row(name, qed["model"]), row("BM25", qed["bm25"])]
    L += [row(f"hybrid, w {x}" + (" (chosen)" if x == w else " (plain RRF)" if x == 0.5 else ""), sweep[str(x)], x == w) for x in shown]
    L += ["", f"new_wiki dev ({nw['questions']:,} questions against {nw['corpus']}) at the chosen weight:", "",
          "| | recall@5 | recall@20 | recall@100 | MRR@10 |", "|---|---|---|---|---|",
          row(name, nw["model"]), row("BM25 (the baseline)", nw["bm25"]), row("hybrid, plain RRF (w 0.5)", nw["hybrid_rrf60"]),
          row(f"hybrid, w {w}", nw["hybrid_by_keyword_weight"][str(w)], True), ""]
    m, bm = nw["hybrid_by_keyword_weight"][str(w)], nw["bm25"]
    above = [k for k in ("recall@5", "recall@20", "recall@100", "mrr@10") if m[k] > bm[k]]
    below = [k for k in ("recall@5", "recall@20", "recall@100", "mrr@10") if m[k] < bm[k]]
    L += [f"At {w} the hybrid is above BM25 alone on {', '.join(above) or 'nothing'}" + (f" and below it on {', '.join(below)}" if below else "") +
          (": for the first few results, rerank the candidates (rerank-demo) or search by keyword alone." if below else "."), ""]
    return "\n".join(L)


def rewrite(zip_path, gateway, card, replace=None):
    """The zip with gateway.json, MODEL_CARD.md and any file in `replace` (name -> bytes) rewritten, the rest byte for byte."""
    tmp = zip_path + ".tmp"
    with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(tmp, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "gateway.json":
                data = (json.dumps(gateway, indent=2, ensure_ascii=False) + "\n").encode()
            elif info.filename == "MODEL_CARD.md":
                data = card.encode()
            elif replace and info.filename in replace:
                data = replace[info.filename]
            out = zipfile.ZipInfo(info.filename, info.date_time)
            out.compress_type = info.compress_type; out.external_attr = info.external_attr
            dst.writestr(out, data, compress_type=info.compress_type, compresslevel=9)
    os.replace(tmp, zip_path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--version", required=True)
    ap.add_argument("names", nargs="+")
    a = ap.parse_args()
    qed_dev = dev_file("qed-dev.json", "qed_nq_dev.json")
    nw_dev = os.path.join(RET, "dev.json") if os.path.exists(os.path.join(RET, "dev.json")) else dev_file("newwiki-dev.json", "squadshifts_new_wiki_v1.0.json")
    for name in a.names:
        zip_path = os.path.join(ROOT, "models", name + ".zip")
        qed = evaluate(zip_path, qed_dev, WEIGHTS)
        sweep = qed["hybrid_by_keyword_weight"]
        w = max(WEIGHTS, key=lambda x: (round(sweep[str(x)]["recall@20"], 6), round(sweep[str(x)]["mrr@10"], 6)))
        nw = evaluate(zip_path, nw_dev, [w])
        with zipfile.ZipFile(zip_path) as z:
            gateway = json.loads(z.read("gateway.json")); card = z.read("MODEL_CARD.md").decode()
        old_version = gateway["version"]
        gateway["version"] = a.version; gateway["hybrid_keyword_weight"] = w
        card = card.replace(f"# {name} {old_version}\n", f"# {name} {a.version}\n", 1)
        card = put_section(card, SECTION, section(name, w, qed, nw), ["## Limitations"])
        rewrite(zip_path, gateway, card)
        result = {"model": name, "version": a.version, "hybrid_keyword_weight": w, "qed": {"bm25": qed["bm25"], "hybrid": sweep[str(w)]},
                  "new_wiki": {"model": nw["model"], "bm25": nw["bm25"], "plain_rrf": nw["hybrid_rrf60"], "hybrid": nw["hybrid_by_keyword_weight"][str(w)]}}
        json.dump(result, open(os.path.join(RET, f"calibration-{name}.json"), "w"), indent=1)  # for write_readme.py
        print(json.dumps(result))


if __name__ == "__main__":
    main()
