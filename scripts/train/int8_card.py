"""The speed rows (and the batch-invariance row) of an int8 zip's card, measured again: every other byte of the zip
stays as it is.

Combines several `bench_int8.ts --out` runs (each batch size: the median of the runs' speed-ups and items/s), renders the
rows and the note under them as cards.py does for a full build, and rewrites the zip's MODEL_CARD.md.

usage: int8_card.py ZIP RUN.json [RUN.json ...] [--date 2026-12-06] [--gateway "Through the gateway: ..."]
"""
import argparse, json, statistics, zipfile
from cards import speed_note, speed_rows
from calibrate_hybrid import rewrite


def combine(runs):
    """One bench record from several runs of the same inputs: per batch size, the medians over the runs."""
    out = {k: runs[0][k] for k in ("rows", "mean_tokens", "inputs") if k in runs[0]}
    out["runs"] = len(runs)
    out["rounds"] = runs[0].get("rounds", 7)
    for key in ("fp32_batch_invariance_max_abs_diff", "int8_batch_invariance_max_abs_diff"):
        out[key] = max(r[key] for r in runs)
    for key in sorted(k for k in runs[0] if k.startswith("batch_")):
        per = [r[key] for r in runs if key in r]
        out[key] = {m: statistics.median(p[m] for p in per) for m in ("fp32_items_per_s", "int8_items_per_s", "speedup")}
    return out


def patch(card, bench):
    """The card with its speed rows, batch-invariance row and speed note replaced (the accuracy rows untouched)."""
    lines = card.split("\n")
    inv = "| max abs diff, row alone vs in a padded batch |"
    lines = [f"{inv} {bench['fp32_batch_invariance_max_abs_diff']:.1e} | {bench['int8_batch_invariance_max_abs_diff']:.1e} |"
             if l.startswith(inv) else l for l in lines]
    rows = [i for i, l in enumerate(lines) if l.startswith("| items/s, batch ")]
    notes = [i for i, l in enumerate(lines) if l.startswith("Speed: onnxruntime-node")]
    if not rows or len(notes) != 1:
        raise SystemExit("the card has no int8 speed rows to replace")
    lines[notes[0]] = speed_note(bench)
    lines[rows[0]:rows[-1] + 1] = speed_rows(bench)
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("zip")
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--date")
    ap.add_argument("--gateway")
    a = ap.parse_args()
    bench = combine([json.load(open(p)) for p in a.runs])
    if a.date:
        bench["date"] = a.date
    if a.gateway:
        bench["gateway"] = a.gateway
    with zipfile.ZipFile(a.zip) as z:
        card = z.read("MODEL_CARD.md").decode()
        gateway = json.loads(z.read("gateway.json"))
    rewrite(a.zip, gateway, patch(card, bench))
    print("\n".join(speed_rows(bench) + [speed_note(bench)]))


if __name__ == "__main__":
    main()
