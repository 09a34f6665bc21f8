"""Evaluate qa-demo, rerank-demo and retrieve-demo (fp32 and int8) the way the gateway runs them (eval_qa.ts,
eval_rank.ts, bench_int8.ts: onnxruntime-node, the gateway's tokenizer and post-processing). Results go next to each
model (eval*.json, bench_int8.json); package.py writes them into the cards and gateway.json (no_answer_threshold).

usage: evaluate_all.py [qa-demo] [rerank-demo] [retrieve-demo]   (default: all three)
"""
import json, os, subprocess, sys
from common import WORK, HERE, ROOT, read_jsonl, write_jsonl

TOK = os.path.join(WORK, "tokenizer.json")
QA = os.path.join(WORK, "qa")
DIRS = {"qa-demo": os.path.join(QA, "qa-demo"), "rerank-demo": os.path.join(WORK, "ret", "rerank-demo"),
        "retrieve-demo": os.path.join(WORK, "ret", "retrieve-demo")}


def node(script, *args):
    cmd = ["nice", "-n", "10", "node", "--import", "tsx", os.path.join(HERE, script), *map(str, args)]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def bench_inputs(name):
    """Real inputs for the speed check: QA windows of the dev sample; (question, paragraph) pairs; paragraphs."""
    path = os.path.join(WORK, f"bench_{name}.jsonl")
    if not os.path.exists(path):
        if name == "qa-demo":
            rows = [{"ids": w["ids"], "tt": w["tt"]} for w in read_jsonl(os.path.join(QA, "dev_sample.win.jsonl"))[:64]]
        else:
            import pickle
            dev = pickle.load(open(os.path.join(WORK, "ret", "data.pkl"), "rb"))["dev"]
            rows = []
            for q in dev["qs"][:64]:
                p = dev["paras"][q["bm25"][1]]
                if name == "rerank-demo":
                    qq = q["qids"][:62]; pp = p[:256 - len(qq) - 3]
                    rows.append({"ids": [2] + qq + [3] + pp + [3], "tt": [0] * (len(qq) + 2) + [1] * (len(pp) + 1)})
                else:
                    rows.append({"ids": [2] + p[:254] + [3], "tt": [0] * (min(len(p), 254) + 2)})
        write_jsonl(path, rows)
    return path


def main():
    names = sys.argv[1:] or list(DIRS)
    for name in names:
        d = DIRS[name]
        int8 = os.path.join(d, "model.int8.onnx")
        if name == "qa-demo":
            node("eval_qa.ts", "--dir", d, "--tokenizer", TOK, "--pairs", os.path.join(QA, "dev.jsonl"), "--neg", os.path.join(QA, "dev_neg.jsonl"),
                 "--out", os.path.join(d, "eval.json"))
            t = json.load(open(os.path.join(d, "eval.json")))["best_threshold"]["t"]
            node("eval_qa.ts", "--dir", d, "--tokenizer", TOK, "--pairs", os.path.join(QA, "nq_dev.jsonl"), "--out", os.path.join(d, "eval_nq.json"))
            node("eval_qa.ts", "--dir", d, "--tokenizer", TOK, "--pairs", os.path.join(QA, "dev.jsonl"), "--max-answer-length", 15,
                 "--out", os.path.join(d, "eval_len15.json"))
            if os.path.exists(int8):
                node("eval_qa.ts", "--dir", d, "--model", int8, "--tokenizer", TOK, "--pairs", os.path.join(QA, "dev.jsonl"),
                     "--neg", os.path.join(QA, "dev_neg.jsonl"), "--threshold", t, "--out", os.path.join(d, "eval_int8.json"))
        else:
            kind = "rerank" if name == "rerank-demo" else "retrieve"
            node("eval_rank.ts", kind, "--dir", d, "--tokenizer", TOK, "--out", os.path.join(d, "eval.json"))
            if os.path.exists(int8):
                node("eval_rank.ts", kind, "--dir", d, "--model", int8, "--tokenizer", TOK, "--out", os.path.join(d, "eval_int8.json"))
        if os.path.exists(int8):
            node("bench_int8.ts", os.path.join(d, "model.onnx"), int8, bench_inputs(name), "--rounds", 7, "--out", os.path.join(d, "bench_int8.json"))


if __name__ == "__main__":
    main()
