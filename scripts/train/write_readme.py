"""Write models/README.md from the packaged models' evaluation files, training summaries and stage times."""
import json, os
from common import WORK, MODELS
import cards as C

QA_DIR = os.path.join(WORK, "qa", "qa-demo")
RR_DIR = os.path.join(WORK, "ret", "rerank-demo")
RT_DIR = os.path.join(WORK, "ret", "retrieve-demo")
STAGES = [("translation", "Debian Translation-en download (SHA256-checked)"),
          ("tokenizer", "Debian/WordNet corpora, cased WordPiece tokenizer (16,384 pieces), skip-gram word vectors"),
          ("datasets", "QA windows and generated negatives, lexicon tables, retrieval pairs with BM25 negatives, zoo task data"),
          ("qa-train-1", "qa-demo training, first half of the schedule"), ("qa-train-2", "qa-demo training, second half (resumes the checkpoint)"),
          ("rerank", "rerank-demo (from qa-demo's weights)"), ("retrieve", "retrieve-demo"),
          ("pretrain", "MLM pre-training of the shared 4-layer encoder"), ("sts-demo", "sts-demo fine-tuning"),
          ("classify-demo", "classify-demo fine-tuning"), ("essay-demo", "essay-demo fine-tuning"), ("essay-demo-bands", "essay-demo-bands fine-tuning"),
          ("int8", "static int8 quantization of qa, rerank, retrieve"), ("evaluate", "evaluation with onnxruntime-node (qa: 15,875 pairs twice, rerank: 158,760 pairs, retrieve) and int8 speed")]


def zip_mb(name):
    p = os.path.join(MODELS, name + ".zip")
    return f"{os.path.getsize(p) / 1e6:.1f} MB" if os.path.exists(p) else "-"


def zoo_row(name):
    p = os.path.join(WORK, "out", name, "summary.json")
    if not os.path.exists(p):
        return None
    s = json.load(open(p)); M = s["metrics"]["metrics"]
    if name == "sts-demo":
        d = M["dev"]
        fig = f"STS-B dev Spearman **{d['spearman']:.3f}**"; base = f"word overlap {d['baseline_word_overlap']['spearman']:.3f}"; tgt = ">= 0.77"
    elif name.startswith("essay"):
        t = M["test"]; b = t["baseline_length"]
        fig = f"test QWK **{t['qwk']:.3f}**, Pearson {t['pearson']:.3f}"; base = f"length only {b['qwk']:.3f} / {b['pearson']:.3f}"; tgt = "beat baseline"
    else:
        t = M["test"]; b = t["baseline_majority"]
        fig = f"test accuracy **{100 * t['accuracy']:.1f}%**, macro-F1 {t['macro_f1']:.3f}"; base = f"majority {100 * b['accuracy']:.1f}% / {b['macro_f1']:.3f}"; tgt = "beat baseline"
    return f"| [`{name}`]({name}.zip) | {s['gateway']['task']} | {zip_mb(name)} | {fig} | {base} | {tgt} |"


def main():
    st = C.stage_times()
    rows = []
    qa = C.load(os.path.join(QA_DIR, "eval.json"))
    if qa:
        a, o = qa["answerable_no_answer_off"], qa["overall_no_answer_on"]
        rows.append(f"| [`qa-demo`](qa-demo.zip) | question-answering | {zip_mb('qa-demo')} | new_wiki dev answerable EM / F1 **{a['em']:.1f} / {a['f1']:.1f}** "
                    f"(no-answer off); with negatives, no-answer on: F1 **{o['f1']:.1f}** | best-overlap sentence F1 {qa['baselines']['best_overlap_sentence_f1']:.1f}, "
                    f"first sentence {qa['baselines']['first_sentence_f1']:.1f}; always no answer {qa['always_no_answer']['f1']:.1f} | F1 >= 35 (stretch 50); +10 over always-no-answer |")
    rr = C.load(os.path.join(RR_DIR, "eval.json"))
    if rr:
        rows.append(f"| [`rerank-demo`](rerank-demo.zip) | text-ranking | {zip_mb('rerank-demo')} | new_wiki dev MRR@10 **{rr['model']['mrr@10']:.3f}**, recall@1 "
                    f"{rr['model']['recall@1']:.3f} (BM25 top 20 reranked) | BM25 {rr['bm25']['mrr@10']:.3f} / {rr['bm25']['recall@1']:.3f} | MRR@10 above BM25 |")
    rt = C.load(os.path.join(RT_DIR, "eval.json")); cal = C.load(os.path.join(WORK, "ret", "calibration-retrieve-demo.json"))
    if rt:
        hy = f"hybrid (RRF) {rt['hybrid_rrf60']['recall@5']:.3f} / {rt['hybrid_rrf60']['recall@20']:.3f}"
        if cal:
            h = cal["new_wiki"]["hybrid"]
            hy += f"; hybrid at the calibrated keyword weight {cal['hybrid_keyword_weight']} (chosen on QED/NQ dev) **{h['recall@5']:.3f} / {h['recall@20']:.3f}**"
        rows.append(f"| [`retrieve-demo`](retrieve-demo.zip) | sentence-similarity | {zip_mb('retrieve-demo')} | new_wiki dev recall@5 / @20 **{rt['model']['recall@5']:.3f} / "
                    f"{rt['model']['recall@20']:.3f}**; {hy} | "
                    f"BM25 {rt['bm25']['recall@5']:.3f} / {rt['bm25']['recall@20']:.3f} | recall@20 within 0.1 of BM25; hybrid above BM25 |")
    for n in ("sts-demo", "essay-demo", "essay-demo-bands", "classify-demo"):
        r = zoo_row(n)
        if r:
            rows.append(r)
    int8_rows = []
    for name, d, kind in (("qa-demo", QA_DIR, "qa"), ("rerank-demo", RR_DIR, "rerank"), ("retrieve-demo", RT_DIR, "retrieve")):
        b = C.load(os.path.join(d, "bench_int8.json")); e8 = C.load(os.path.join(d, "eval_int8.json")); e = C.load(os.path.join(d, "eval.json"))
        if not (b and e8 and e):
            continue
        if kind == "qa":
            acc = f"answerable F1 {e['answerable_no_answer_off']['f1']:.1f} -> {e8['answerable_no_answer_off']['f1']:.1f}"
        elif kind == "rerank":
            acc = f"MRR@10 {e['model']['mrr@10']:.3f} -> {e8['model']['mrr@10']:.3f}"
        else:
            acc = f"recall@20 {e['model']['recall@20']:.3f} -> {e8['model']['recall@20']:.3f}"
        fb = os.path.getsize(os.path.join(d, "model.onnx")) / 1e6; ib = os.path.getsize(os.path.join(d, "model.int8.onnx")) / 1e6
        int8_rows.append(f"| [`{name}-int8`]({name}-int8.zip) | {fb:.1f} -> {ib:.1f} MB | {b['batch_1']['speedup']:.2f}x | {b['batch_8']['speedup']:.2f}x | {acc} | "
                         f"{b['int8_batch_invariance_max_abs_diff']:.1e} |")
    L = ["# Demo model zoo", "",
         "Small models the gateway serves out of the box, trained from scratch on this project's CPU machines from offline data "
         "(`../shared/data`: human-written QA, English prose, the STS Benchmark; Debian metadata and WordNet). Each zip is a complete "
         "artifact in the format of `../shared/API.md` \"Model artifacts\": `config.json`, `tokenizer.json` (+ `tokenizer_config.json`, "
         "`special_tokens_map.json`), `model.onnx` (opset 14, inputs `input_ids`/`attention_mask`/`token_type_ids`, dynamic batch and "
         "sequence), `gateway.json` and `MODEL_CARD.md` (data and licences, training time, held-out metrics beside baselines, weak spots). "
         "All share one cased WordPiece tokenizer of 16,384 pieces. They are demos: far below real pretrained models, honest about it.", "",
         "| model | task | zip | metric (held-out) | baseline, same split | target |", "|---|---|---|---|---|---|"] + rows + [
         "", "qa, rerank and retrieve are measured on SQuAD-shifts new_wiki (the development set, never trained on) the way the gateway "
         "serves them (`eval_qa.ts`, `eval_rank.ts`: the gateway's tokenizer windows and `answerSpans`, onnxruntime-node); the other "
         "models on their own held-out splits (see each card).", "",
         "## Reproduce the figures", "", "```",
         "npm run models:build                        # everything below, stage by stage (resumable)",
         "W=scripts/train/.work",
         "node --import tsx scripts/train/eval_qa.ts --zip models/qa-demo.zip --pairs $W/qa/dev.jsonl --neg $W/qa/dev_neg.jsonl",
         "node --import tsx scripts/train/eval_qa.ts --zip models/qa-demo.zip --pairs $W/qa/nq_dev.jsonl",
         "node --import tsx scripts/train/eval_rank.ts rerank --zip models/rerank-demo.zip",
         "node --import tsx scripts/train/eval_rank.ts retrieve --zip models/retrieve-demo.zip",
         "node --import tsx scripts/train/eval_qa.ts --zip models/qa-demo-int8.zip --pairs $W/qa/dev.jsonl --neg $W/qa/dev_neg.jsonl",
         "node --import tsx scripts/train/bench_int8.ts $W/qa/qa-demo/model.onnx $W/qa/qa-demo/model.int8.onnx $W/bench_qa-demo.jsonl",
         "```", "", "The `.jsonl` dev files and `dev.json` are written by the datasets stage (`bash scripts/train/build-all.sh --data-only`, "
         "minutes) from `../shared/data`; nothing of the data is committed.", "",
         "## Rebuild", "", "```", "npm run models:build      # = bash scripts/train/build-all.sh", "```", "",
         "Each stage is skipped when its outputs exist under `TRAIN_WORK` (default `scripts/train/.work/`, gitignored), and the long "
         "training stages resume from their last checkpoint (every 10 minutes) when re-run. `--only STAGE` runs one stage, "
         "`--data-only` stops after the datasets. Everything runs on one torch thread (`OPENBLAS_NUM_THREADS=1`; two threads were "
         "slower here) at nice 10. Needs root for `apt-get install` of python3-torch, python3-onnx, python3-numpy, "
         "libopenblas0-pthread and wordnet-base (skipped when present), network access to deb.debian.org for Translation-en, "
         "`npm ci`, and `../shared/data` (or `SHARED_DATA`).", "",
         "Wall time per stage, as measured while building the shipped models (one thread of a 2-core VM shared with other "
         "engineers' builds and tests, load average often 5-14, so on a quiet machine expect less):", "",
         "| stage | what | wall time |", "|---|---|---|"]
    for k, what in STAGES:
        L.append(f"| `{k}` | {what} | {C.fmt_time(st[k]) if k in st else 'not timed'} |")
    L += ["", f"Total: {C.fmt_time(sum(st.values()))}." if st else "", ""]
    L += ["## Measuring before choosing sizes", "", *json.load(open(os.path.join(WORK, "sizing.json"))) if os.path.exists(os.path.join(WORK, "sizing.json")) else []]
    L += ["", "## int8 variants", "",
          "`qa-demo-int8`, `rerank-demo-int8`, `retrieve-demo-int8`: the same models with int8 weights and **static** int8 activation "
          "scales (calibrated once on 256 training inputs and frozen in the graph: QuantizeLinear -> MatMulInteger -> rescale; "
          "`scripts/train/quantize.py`). Dynamic quantization (ONNX Runtime's `quantize_dynamic`) takes the activation scale from the "
          "whole padded batch, so a row's output depends on its batch-mates (ONNX Runtime #10111; the gateway's warm-up check would "
          "refuse it); constant scales cannot. Speed: onnxruntime-node, one intra-op thread, fp32 and int8 alternating in one run "
          "(`bench_int8.ts`, medians of 7 rounds over 64 real inputs):", "",
          "| model | ONNX size | speed batch 1 | speed batch 8 | accuracy fp32 -> int8 | row alone vs padded batch |",
          "|---|---|---|---|---|---|"] + int8_rows
    L += ["", *json.load(open(os.path.join(WORK, "int8_notes.json"))) if os.path.exists(os.path.join(WORK, "int8_notes.json")) else []]
    L += ["", "Training never runs in CI. `test/models/zoo.test.ts` (in `npm test`) unzips every model, checks its layout and "
          "`gateway.json` against a schema, loads it with onnxruntime-node and the tokenizer with `@anush008/tokenizers`, checks "
          "input/output names, batch invariance on single texts and on pairs, and one real input; "
          "`test/models/qa-dev-sample.test.ts` asks qa-demo the first 30 new_wiki questions through `/v1/qa`."]
    open(os.path.join(MODELS, "README.md"), "w").write("\n".join(L) + "\n")


if __name__ == "__main__":
    main()
