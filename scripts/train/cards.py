"""Model cards and gateway.json of qa-demo, rerank-demo, retrieve-demo and their int8 variants (package.py writes the
zips). Every figure comes from the evaluation files next to each model (evaluate_all.py: the gateway's tokenizer,
post-processing and onnxruntime-node) and from the training summaries."""
import json, os
from common import WORK

VERSION = "2.0.0"
SQUAD = ("SQuAD v1.0 train (Rajpurkar et al. 2016; `../shared/data/qa-train/squad_v1.0_train.json.gz`, rebuilt from "
         "rajpurkar/SQuAD-explorer @ 13f82e35): CC BY-SA 4.0 (Wikipedia text). About 3% of its answer offsets were "
         "reconstructed and may point at another occurrence of the same string.")
QED = ("Natural Questions via QED (google-research-datasets/QED @ 71e19e08; `qed_nq_train.json`, and `qed_nq_dev.json` for "
       "evaluation only): CC BY-SA 3.0 (Wikipedia / Natural Questions).")
COVID = ("COVID-QA (deepset-ai/COVID-QA @ fb2eb5e2, first batch `covidqa_deepset_200423.json`): Apache-2.0; contexts are "
         "CORD-19 open-access papers.")
NEWWIKI = ("SQuAD-shifts new_wiki (Miller et al. 2020; modestyachts/squadshifts-website @ b7cc4d50, "
           "`squadshifts_new_wiki_v1.0.json`): CC BY 4.0, passages from Wikipedia. **Development set only**: never trained on; "
           "the no-answer threshold and model choices were made on it.")
PROSE = ("English prose (`../shared/data/prose`): 15 OpenStax college textbooks (CC BY 4.0; the last CC BY snapshots of "
         "openstax/osbooks-*) and the paragraphs of the 442 SQuAD v1.0 train articles (Wikipedia, CC BY-SA 4.0): the tokenizer "
         "and the skip-gram word vectors.")
DEBIAN_TOK = ("Debian package descriptions (Debian main, DFSG-free), WordNet 3.0 glosses (WordNet licence) and STS Benchmark "
              "train sentences (CC BY-SA 4.0 scores; sentences under their sources' licences): only through the shared "
              "tokenizer and word vectors.")
SHAREALIKE = ("Because part of the training text is CC BY-SA (Wikipedia via SQuAD and Natural Questions), treat these weights "
              "as a CC BY-SA 4.0 derivative: keep the attribution above and share alike.")
TOKENIZER = ("Tokenizer: the zoo's shared cased WordPiece vocabulary of 16,384 pieces (`build_tokenizer.py`: BertNormalizer "
             "without lower-casing, BertPreTokenizer, `[CLS] A [SEP] B [SEP]` pair template), learned on the prose, the QA "
             "training contexts and questions (never the dev sets), Debian descriptions, WordNet glosses and STS-B train. "
             "Training inputs were made by the gateway's own tokenizer code (`src/inference/tokenizer.ts` on "
             "`@anush008/tokenizers`).")


def fmt_time(s):
    s = int(round(s))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


def load(path):
    return json.load(open(path)) if os.path.exists(path) else None


def stage_times():
    p = os.path.join(WORK, "stage_times.jsonl")
    out = {}
    if os.path.exists(p):
        for line in open(p):
            r = json.loads(line)
            out[r["stage"]] = out.get(r["stage"], 0) + r["seconds"]
    return out


def arch_line(cfg, params, onnx_bytes, extra):
    return (f"BERT-style encoder from scratch: {cfg['num_hidden_layers']} layers, hidden size {cfg['hidden_size']}, "
            f"{cfg['num_attention_heads']} heads, FFN {cfg['intermediate_size']}, GELU, post-LayerNorm, absolute positions "
            f"(max {cfg['max_position_embeddings']}), cased WordPiece vocabulary of {cfg['vocab_size']}{extra}. "
            f"{params / 1e6:.2f} M parameters; `model.onnx` {onnx_bytes / 1e6:.1f} MB, opset 14, dynamic batch and sequence axes.")


LEXICAL = ("In-graph lexical-match features (DrQA-style exact match, made from the standard inputs only): for every token, "
           "whether the same word piece, or the same normalised form (case, accents and regular English suffixes folded "
           "through a constant vocabulary table), occurs on the other side of the pair (`input_ids` compared across the "
           "`token_type_ids` segments, special tokens and padding excluded); matched passage tokens also carry the inverse "
           "document frequency of the piece (a constant table from the training contexts), and a width-9 convolution over "
           "these signals gives each token the density of question words around it. They are added to the embeddings, so "
           "the ONNX graph takes exactly `input_ids`, `attention_mask`, `token_type_ids` like any BERT export.")


def int8_section(bench, q_fp32, q_int8, kind):
    if not bench:
        return []
    L = ["## int8 variant", "",
         "Weights int8 (per output column for every Linear layer, per row for the word-embedding table), activations "
         "quantized with **static** scales calibrated once on 256 training inputs and frozen as constants "
         "(QuantizeLinear -> MatMulInteger -> rescale). The attention products and the lexical features stay fp32. Dynamic "
         "activation quantization would compute the scale over the whole padded batch and break batch invariance "
         "(ONNX Runtime #10111); with constant scales a row gives the same output alone or in any batch.", "",
         "| | fp32 | int8 |", "|---|---|---|",
         f"| `model.onnx` size | {bench['fp32_bytes'] / 1e6:.1f} MB | {bench['int8_bytes'] / 1e6:.1f} MB |",
         *speed_rows(bench),
         f"| max abs diff, row alone vs in a padded batch | {bench['fp32_batch_invariance_max_abs_diff']:.1e} | {bench['int8_batch_invariance_max_abs_diff']:.1e} |"]
    L += [f"| {k} | {a} | {b} |" for k, a, b in q_fp32_int8_rows(q_fp32, q_int8, kind)]
    L += ["", speed_note(bench), ""]
    return L


def speed_rows(bench):
    """The int8 table's speed rows: one per batch size measured (`bench_int8.ts --batches`)."""
    batches = sorted(int(k.split("_", 1)[1]) for k in bench if k.startswith("batch_"))
    return [f"| items/s, batch {b}{' (1 intra-op thread)' if i == 0 else ''} | {bench[f'batch_{b}']['fp32_items_per_s']:.0f} | "
            f"{bench[f'batch_{b}']['int8_items_per_s']:.0f} ({bench[f'batch_{b}']['speedup']:.2f}x) |" for i, b in enumerate(batches)]


def speed_note(bench):
    """How the speed rows were measured; `runs` (several bench_int8.ts runs combined), `date` and `gateway` (a sentence on
    the speed through the gateway) when the bench record has them."""
    runs = bench.get("runs", 1)
    text = (f"Speed: onnxruntime-node, one intra-op thread, the two graphs alternating for {bench.get('rounds', 7)} rounds on "
            f"{bench['rows']} real inputs of {bench['mean_tokens']:.0f} tokens on average (`bench_int8.ts`, medians"
            + (f"; each row the median of {runs} runs" if runs > 1 else "") + "), on a shared 2-core VM"
            + (f", {bench['date']}" if bench.get("date") else "") + ".")
    return text + (" " + bench["gateway"] if bench.get("gateway") else "")


def q_fp32_int8_rows(a, b, kind):
    if not a or not b:
        return []
    if kind == "qa":
        return [("answerable F1, no-answer off (new_wiki dev)", f"{a['answerable_no_answer_off']['f1']:.1f}", f"{b['answerable_no_answer_off']['f1']:.1f}"),
                ("overall F1, no-answer on, same threshold", f"{a['overall_no_answer_on']['f1']:.1f}", f"{b['overall_no_answer_on']['f1']:.1f}")]
    if kind == "rerank":
        return [("MRR@10 (new_wiki dev, BM25 top 20)", f"{a['model']['mrr@10']:.3f}", f"{b['model']['mrr@10']:.3f}"),
                ("recall@1", f"{a['model']['recall@1']:.3f}", f"{b['model']['recall@1']:.3f}")]
    return [("recall@20 (new_wiki dev, 1,581 paragraphs)", f"{a['model']['recall@20']:.3f}", f"{b['model']['recall@20']:.3f}"),
            ("hybrid (RRF) recall@20", f"{a['hybrid_rrf60']['recall@20']:.3f}", f"{b['hybrid_rrf60']['recall@20']:.3f}")]
