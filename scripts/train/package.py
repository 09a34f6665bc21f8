"""Package one trained model as models/<name>.zip: HF layout + gateway.json + MODEL_CARD.md.
Validates the ONNX graph with onnxruntime-node first (parity with PyTorch and batch invariance).

usage: package.py NAME [NAME...]
"""
import json, os, subprocess, sys, zipfile
from common import WORK, HERE, ROOT, MODELS, TOPICAL

VERSION = "2.0.0"  # the zoo retrained on the shared cased tokenizer (1.0.0: the first wave's own Debian vocabulary)
DEBIAN = ("Debian 12 \"bookworm\" archive metadata: the `main` Packages index (apt lists after `apt-get update`) and the "
          "`main/i18n/Translation-en` description index fetched from deb.debian.org and checked against the release's "
          "InRelease SHA256. Package descriptions are written by each package's maintainers and ship with the packages of "
          "Debian main, so they fall under those packages' DFSG-free licences; maintainer names, versions, sections, "
          "sizes and dependencies are factual metadata.")
WORDNET = "WordNet 3.0 (Debian `wordnet-base`), Princeton University, WordNet 3.0 licence (permissive, BSD-style, attribution)."
PROSE = ("English prose (`../shared/data/prose`): 15 OpenStax college textbooks (CC BY 4.0; the last CC BY snapshots of "
         "openstax/osbooks-*) and the paragraphs of the 442 SQuAD v1.0 train articles (Wikipedia, CC BY-SA 4.0).")
TOKENIZER = ("Tokenizer: one cased WordPiece vocabulary of 16,384 pieces shared by all demo models (`build_tokenizer.py`), learned "
             "on English prose (OpenStax textbooks, SQuAD train articles), the QA training contexts and questions (never the dev "
             "sets), Debian descriptions, WordNet glosses and STS-B train sentences. Training data was tokenized with the Rust "
             "tokenizer on this very `tokenizer.json` (`@anush008/tokenizers`), as the gateway does.")
STS = ("STS Benchmark (`../shared/data/stsbenchmark`, Cer et al. 2017): scores CC BY-SA 4.0; the sentences keep the "
       "licences of their original sources (MSR video/paraphrase corpora, news headlines, image captions, forums), see its LICENSE.txt.")

TASKS = {
    "sts-demo": dict(task="sentence-similarity", output="identity", pooling="mean", max_length=128,
                     description="Sentence embeddings (mean pooling, L2-normalised, cosine similarity); contrastive pre-training on "
                                 "Debian descriptions and WordNet, fine-tuned on STS Benchmark train."),
    "essay-demo": dict(task="essay-scoring", output="identity", max_length=256, score={"min": 1, "max": 6, "round": 0.5},
                       description="Writing-coherence score on a 1-6 scale (regression). 6 = reads like an intact real paragraph; each "
                                   "point lower ~ one more automatic corruption. Not a human essay grade."),
    "essay-demo-bands": dict(task="essay-scoring", output="softmax", max_length=256, labels=["1", "2", "3", "4", "5", "6"],
                             score={"min": 1, "max": 6, "round": 0.5, "bandScores": [1, 2, 3, 4, 5, 6]},
                             description="Writing-coherence score as a distribution over bands 1-6 (classification); the gateway "
                                         "reports the expected score. Same target as essay-demo. Not a human essay grade."),
    "sts-cross-demo": dict(task="text-ranking", output="sigmoid", max_length=256,
                           description="Sentence-pair similarity as a cross-encoder: both sentences in one input, one score in [0, 1] "
                                       "(STS-B gold / 5); fine-tuned on STS Benchmark train from sts-demo's encoder."),
    "classify-demo": dict(task="text-classification", output="softmax", max_length=128, labels=TOPICAL,
                          description="Software description -> Debian archive section, over ten topical sections."),
}


def gateway_json(name, metrics):
    t = TASKS[name]
    g = {"name": name, "version": VERSION, "task": t["task"], "max_length": t["max_length"]}
    for k in ("labels", "output", "pooling", "score"):
        if k in t:
            g[k] = t[k]
    if name in ("sts-demo", "sts-cross-demo"):
        g["threshold"] = round(metrics["metrics"]["threshold"], 3)
    g["description"] = t["description"]
    return g


def pct(x):
    return f"{100 * x:.1f}"


def fmt_time(s):
    s = int(s)
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


def card(name, m, cfg, g, val, onnx_bytes):
    M = m["metrics"]
    arch = (f"BERT-style encoder, {cfg['num_hidden_layers']} layers, hidden size {cfg['hidden_size']}, "
            f"{cfg['num_attention_heads']} heads, FFN {cfg['intermediate_size']}, GELU, post-LayerNorm, absolute positions "
            f"(max {cfg['max_position_embeddings']}), cased WordPiece vocabulary of {cfg['vocab_size']}. "
            f"{m['parameters'] / 1e6:.2f} M parameters, `model.onnx` {onnx_bytes / 1e6:.1f} MB fp32, opset 14.")
    pre = (f"Shared encoder pre-trained from scratch with masked-language modelling (15% masking, packed sequences of "
           f"{m['pretrain_seq']} tokens, batch {m['pretrain_batch']}) for {m['pretrain_steps']} steps "
           f"({fmt_time(m['pretrain_seconds'])} on one CPU thread; final MLM loss {m['pretrain_mlm_loss']}) on the shared corpus: "
           f"English expository prose (OpenStax textbooks, SQuAD train articles), the QA training contexts and questions, Debian "
           f"descriptions, WordNet glosses and STS-B train sentences (held-out 'test' packages and synsets excluded); its word "
           f"embeddings started from skip-gram vectors trained on the same corpus (`sgns.py`).")
    done = (m.get("steps_done") or {}).get("main", m["finetune_steps"])
    steps_txt = (f"{done} steps (stopped by the session's training deadline; the linear schedule was planned for "
                 f"{m['finetune_steps']})" if done < m["finetune_steps"] else f"{m['finetune_steps']} steps")
    ft = f"Fine-tuning: {steps_txt}, batch {m['batch_size']}, AdamW, peak LR {m['lr']}, linear warm-up/decay, {fmt_time(m['finetune_seconds'])} on one CPU thread."
    pv = m.get("previous")
    if pv:
        ft = (f"Fine-tuning in two runs: {pv['finetune_steps']} steps, batch {pv['batch_size']}, AdamW, peak LR {pv['lr']}, linear "
              f"warm-up/decay ({fmt_time(pv['finetune_seconds'])}); then continued from those weights for " + ft[len("Fine-tuning: "):])
    L = [f"# {name} {VERSION}", "", g["description"], "",
         "**Demo model.** Tiny, trained in minutes on one CPU core from offline data only, to exercise the gateway and show the "
         "artifact format. Do not use it for real decisions.", "",
         "## Task and interface", ""]
    sources, metric_lines, notes = [], [], []
    if name == "sts-demo":
        L += ["Sentence embeddings. Input: one sentence as segment A (at most 128 tokens). Output `last_hidden_state` "
              "`[batch, sequence, hidden]`; pool with the attention mask (mean), L2-normalise, compare with cosine. "
              f"`gateway.json` `threshold` = {g['threshold']}: the cosine at or above which a pair is called similar, chosen on "
              "STS-B train as the cut that best separates gold similarity >= 3.0 (train accuracy "
              f"{pct(M['threshold_train_accuracy'])}%).", ""]
        sources = [DEBIAN, WORDNET, STS]
        L_data = (f"Stage 1, contrastive (InfoNCE, in-batch negatives, temperature 0.05, {m['contrastive_steps']} steps of 64 pairs): "
                  f"{M['contrastive_pairs']} pairs, a Debian package's short description vs the first two sentences of its long "
                  "description, and a WordNet gloss vs its example sentence or its lemmas (training-split packages and synsets only). "
                  f"Stage 2: CoSENT ranking loss on cosine similarity over STS Benchmark train ({M['train_n']} pairs). "
                  "STS-B dev (1,500 pairs) is never used for training or model selection.")
        d = M["dev"]
        metric_lines += ["| split | n | Spearman | Pearson | word-overlap baseline Spearman / Pearson | similar/not accuracy at threshold |",
                         "|---|---|---|---|---|---|",
                         f"| STS-B dev | {d['n']} | **{d['spearman']:.3f}** | {d['pearson']:.3f} | {d['baseline_word_overlap']['spearman']:.3f} / {d['baseline_word_overlap']['pearson']:.3f} | {pct(d['similar_accuracy_at_threshold'])}% |",
                         f"| STS-B train (seen) | {M['train']['n']} | {M['train']['spearman']:.3f} | {M['train']['pearson']:.3f} | {M['train']['baseline_word_overlap']['spearman']:.3f} / {M['train']['baseline_word_overlap']['pearson']:.3f} | {pct(M['train']['similar_accuracy_at_threshold'])}% |",
                         "", "Word-overlap baseline: Jaccard similarity of the lower-cased word sets of the two sentences."]
        notes += ["A from-scratch 4-layer model with a small vocabulary: far below real sentence encoders (which reach ~0.85 on STS-B dev)."]
    elif name == "sts-cross-demo":
        L += ["Cross-encoder (`text-ranking`): input the pair as segments A and B ([CLS] a [SEP] b [SEP], token types 0/1, at "
              "most 256 tokens in all); output `logits` `[batch, 1]`, whose sigmoid is the similarity in [0, 1] (STS-B gold "
              "score / 5). Served by `/v1/similarity` and `/v1/similarity/batch` (`score` = that sigmoid), `/v1/rerank` and "
              "TEI `/rerank`. Unlike sts-demo it gives no embeddings: every pair is a model run. "
              f"`gateway.json` `threshold` = {g['threshold']}: the score at or above which a pair is called similar, chosen on "
              f"STS-B train as the cut that best separates gold >= 3.0 (train accuracy {pct(M['threshold_train_accuracy'])}%).", ""]
        sources = [DEBIAN, WORDNET, STS]
        L_data = (f"STS Benchmark train, each pair in both orders ({M['train_n']} inputs), binary cross-entropy against gold / 5 "
                  "(as sentence-transformers' CrossEncoder trains on STS-B). The encoder starts from sts-demo's fine-tuned weights "
                  "(its contrastive stage on Debian descriptions and WordNet, then STS-B train). STS-B dev is never used for "
                  "training or model selection.")
        d = M["dev"]
        metric_lines += ["| split | n | Spearman | Pearson | word-overlap baseline Spearman / Pearson |", "|---|---|---|---|---|",
                         f"| STS-B dev | {d['n']} | **{d['spearman']:.3f}** | {d['pearson']:.3f} | {d['baseline_word_overlap']['spearman']:.3f} / {d['baseline_word_overlap']['pearson']:.3f} |",
                         f"| STS-B train (seen) | {M['train']['n']} | {M['train']['spearman']:.3f} | {M['train']['pearson']:.3f} | {M['train']['baseline_word_overlap']['spearman']:.3f} / {M['train']['baseline_word_overlap']['pearson']:.3f} |",
                         "", f"STS-B dev similar/not accuracy at the threshold: {pct(d['similar_accuracy_at_threshold'])}%. "
                         "Compare sts-demo (cosine of embeddings) on the same dev pairs in its own card."]
        notes += ["Scores every pair with a full model run: fine for a few pairs, not for searching a large set (use sts-demo's "
                  "embeddings for that).", "A from-scratch 4-layer model; real cross-encoders reach ~0.90 on STS-B dev."]
    elif name in ("essay-demo", "essay-demo-bands"):
        bands = name == "essay-demo-bands"
        L += [("Output `logits` `[batch, 6]` over score bands 1..6 (`output: softmax`); the gateway reports the expected score "
               "sum(p_i * i), rounded to 0.5." if bands else
               "Output `logits` `[batch, 1]` is the score itself on the 1-6 scale (`output: identity`); the gateway clips to 1-6 and "
               "rounds to 0.5.") + " Input: the text as segment A, at most 256 tokens (longer texts are truncated).", "",
              "## What the score means", "",
              "There is no human-scored essay set among the offline sources, so this model does **not** predict an essay grade. "
              "It scores *writing coherence* on a computable target: real paragraphs (Debian package descriptions, 3-12 sentences, "
              "35-170 words) were corrupted k = 0..5 times, each corruption being one of: swap two sentences, replace a sentence "
              "with one from another package, delete a quarter of the words of a sentence, scramble a window of five words; the "
              "target is 6 - k. So 6 means 'reads like an intact, real paragraph' and each point lower means roughly one more "
              "break in order, topic or grammar. It knows nothing about argument quality, spelling, style or content.", ""]
        sources = [DEBIAN]
        L_data = (f"{M['train_n']} training texts (every training paragraph twice, each with its own random k), 1 text per paragraph "
                  "for dev and test, k uniform in 0..5; paragraphs split by Debian source package. Head: besides the masked mean of "
                  "the encoder states, a per-token head estimates where the text is damaged; it is trained with an auxiliary "
                  "token-level loss on the known corrupted words (intruded or moved sentences, words next to a deletion, scrambled "
                  "windows), and the score head also sees the fraction and count of suspect tokens. Only `logits` is exported.")
        metric_lines += ["| split | n | QWK | Pearson | MAE | length-only baseline QWK / Pearson / MAE |", "|---|---|---|---|---|---|"]
        for s in ("test", "dev"):
            r = M[s]; b = r["baseline_length"]
            metric_lines.append(f"| {s} | {r['n']} | **{r['qwk']:.3f}** | **{r['pearson']:.3f}** | {r['mae']:.2f} | {b['qwk']:.3f} / {b['pearson']:.3f} / {b['mae']:.2f} |")
        metric_lines += ["", "QWK on the prediction rounded to the nearest integer band; length-only baseline: least-squares line "
                         "from word count to score, fitted on train."]
        notes += ["Trained on software descriptions: on real student essays the score only reflects local coherence signals and "
                  "will be noisy.", "Scores 2-5 are the hardest to tell apart (one corruption more or less)."]
    else:
        L += ["Output `logits` `[batch, 10]` (`output: softmax`), labels in `gateway.json` `labels` and `config.json` `id2label`: "
              + ", ".join(TOPICAL) + ". Input: the text as segment A, at most 128 tokens.", ""]
        sources = [DEBIAN]
        L_data = (f"{M['train_n']} training descriptions (short + long description) of Debian packages in the ten topical sections, "
                  "duplicates removed, split by source package (`-dev`/`-doc` siblings stay together). Cross-entropy with square-root "
                  "inverse-frequency class weights.")
        metric_lines += ["| split | n | accuracy | macro-F1 | majority-class baseline accuracy / macro-F1 |", "|---|---|---|---|---|"]
        for s in ("test", "dev"):
            r = M[s]; b = r["baseline_majority"]
            metric_lines.append(f"| {s} | {r['n']} | **{pct(r['accuracy'])}%** | **{r['macro_f1']:.3f}** | {pct(b['accuracy'])}% / {b['macro_f1']:.3f} ('{b['label']}') |")
        notes += ["Debian sections overlap (utils vs admin, devel vs text); even people disagree on many packages."]
    ft_secs = m["finetune_seconds"] + (m["previous"]["finetune_seconds"] if m.get("previous") else 0)
    total = m["pretrain_seconds"] + ft_secs
    L += ["## Architecture and size", "", arch, "",
          "Attention masks padding with an additive bias, so a row's outputs do not depend on the other rows of its batch: "
          f"checked with onnxruntime-node on {val['rows']} held-out rows of lengths {min(val['lengths'])}-{max(val['lengths'])} "
          f"(max |diff| alone vs in a padded batch: {val['batchInvarianceMaxAbsDiff']:.1e}; vs PyTorch: {val['parityMaxAbsDiff']:.1e}). "
          "Never feed more than `max_length` tokens: the position table has "
          f"{cfg['max_position_embeddings']} entries.", "",
          "## Data", "", L_data, "", "Sources and licences:", ""] + [f"- {s}" for s in sources] + [
          "", TOKENIZER, "",
          "## Training", "", pre, "", ft, "", f"Training time: {fmt_time(total)} in all ({fmt_time(m['pretrain_seconds'])} shared "
          f"pre-training + {fmt_time(ft_secs)} fine-tuning), one thread of a shared 2-core VM. Seeds fixed; rebuild "
          "with `npm run models:build` (scripts in `scripts/train/`).", "",
          "## Held-out evaluation", ""] + metric_lines + ["", "## Limitations", ""] + [f"- {n}" for n in notes] + [
          "- English only, cased vocabulary of 16k pieces; rare words split into many pieces."]
    return "\n".join(L) + "\n"


def package(name):
    out = os.path.join(WORK, "out", name)
    m = json.load(open(os.path.join(out, "metrics.json")))
    cfg = json.load(open(os.path.join(out, "config.json")))
    r = subprocess.run(["node", os.path.join(HERE, "validate.mjs"), os.path.join(out, "model.onnx"), os.path.join(out, "reference.json")],
                       capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        sys.exit(f"{name}: ONNX validation failed: {r.stdout} {r.stderr}")
    val = json.loads(r.stdout)
    json.dump(val, open(os.path.join(out, "validation.json"), "w"))
    g = gateway_json(name, m)
    onnx_bytes = os.path.getsize(os.path.join(out, "model.onnx"))
    files = {"config.json": json.dumps(cfg, indent=2) + "\n", "gateway.json": json.dumps(g, indent=2) + "\n",
             "MODEL_CARD.md": card(name, m, cfg, g, val, onnx_bytes)}
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        files[f] = open(os.path.join(WORK, f), encoding="utf-8").read()
    os.makedirs(MODELS, exist_ok=True)
    path = os.path.join(MODELS, name + ".zip")
    with zipfile.ZipFile(path + ".tmp", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for f in ("config.json", "gateway.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "MODEL_CARD.md"):
            z.writestr(zipfile.ZipInfo(f, (2026, 11, 22, 0, 0, 0)), files[f], zipfile.ZIP_DEFLATED)
        zi = zipfile.ZipInfo("model.onnx", (2026, 11, 22, 0, 0, 0)); zi.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(zi, open(os.path.join(out, "model.onnx"), "rb").read())
    os.replace(path + ".tmp", path)
    size = os.path.getsize(path)
    assert size <= 15 * 1024 * 1024, f"{name}.zip is {size} bytes"
    json.dump({"name": name, "zip_bytes": size, "gateway": g, "metrics": m, "validation": val},
              open(os.path.join(out, "summary.json"), "w"), indent=2)
    print(f"{name}: {size / 1e6:.2f} MB, batch invariance {val['batchInvarianceMaxAbsDiff']:.1e}")


# ---------- qa-demo, rerank-demo, retrieve-demo and their int8 variants ----------
import cards as C

NEW_DIRS = {"qa-demo": os.path.join(WORK, "qa", "qa-demo"), "rerank-demo": os.path.join(WORK, "ret", "rerank-demo"),
            "retrieve-demo": os.path.join(WORK, "ret", "retrieve-demo")}


def reference(name, d):
    """PyTorch outputs for 8 real inputs of mixed lengths (validate.mjs checks the ONNX graph against them)."""
    path = os.path.join(d, "reference.json")
    if os.path.exists(path):
        return path
    import torch
    from quantize import load_torch, calibration_batches
    model = load_torch(name)
    ids, att, tt = next(calibration_batches(name, n=8, bs=8))
    rows = []
    with torch.no_grad():
        for i in range(ids.size(0)):
            n = int(att[i].sum())
            o = model(ids[i:i + 1, :n], att[i:i + 1, :n], tt[i:i + 1, :n])
            out = [x[0].tolist() for x in o] if isinstance(o, tuple) else o[0].tolist()
            rows.append({"ids": ids[i, :n].tolist(), "tt": tt[i, :n].tolist(), "out": out})
    json.dump(rows, open(path, "w"))
    return path


def validate(onnx_path, ref, invariance_only=False):
    args = ["node", os.path.join(HERE, "validate.mjs"), onnx_path, ref] + (["--invariance-only"] if invariance_only else [])
    r = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        sys.exit(f"{onnx_path}: ONNX validation failed: {r.stdout} {r.stderr}")
    return json.loads(r.stdout)


def write_zip(name, files, onnx_path, limit=15 * 1024 * 1024):
    os.makedirs(MODELS, exist_ok=True)
    path = os.path.join(MODELS, name + ".zip")
    with zipfile.ZipFile(path + ".tmp", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for f in ("config.json", "gateway.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "MODEL_CARD.md"):
            z.writestr(zipfile.ZipInfo(f, (2026, 12, 1, 0, 0, 0)), files[f], zipfile.ZIP_DEFLATED)
        zi = zipfile.ZipInfo("model.onnx", (2026, 12, 1, 0, 0, 0)); zi.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(zi, open(onnx_path, "rb").read())
    os.replace(path + ".tmp", path)
    size = os.path.getsize(path)
    assert size <= limit, f"{name}.zip is {size} bytes"
    return size


DESCRIPTIONS = {
    "qa-demo": ("Extractive QA over English paragraphs (SQuAD 2.0 style, can say 'no answer'): a small reader trained from scratch "
                "on SQuAD v1.0, Natural Questions (QED) and COVID-QA, with in-graph lexical-match features."),
    "rerank-demo": ("Cross-encoder reranker: relevance of a passage to a query, one logit (score = sigmoid); trained on "
                    "question/paragraph pairs of SQuAD v1.0 and Natural Questions with BM25 and same-article hard negatives."),
    "retrieve-demo": ("Bi-encoder for retrieval: questions and passages embedded by the same model (mean pooling, L2-normalised, "
                      "cosine), DPR-style training on SQuAD v1.0 and Natural Questions question/paragraph pairs."),
}


def new_gateway(name, base, d):
    g = {"name": name, "version": C.VERSION}
    if base == "qa-demo":
        ev = C.load(os.path.join(d, "eval.json"))
        g.update(task="question-answering", max_length=256, output="identity", no_answer_threshold=round(ev["best_threshold"]["t"], 4))
    elif base == "rerank-demo":
        g.update(task="text-ranking", max_length=256, output="sigmoid")
    else:
        g.update(task="sentence-similarity", max_length=256, output="identity", pooling="mean")
    g["description"] = DESCRIPTIONS[base] + (" int8 weights and static int8 activations (batch-invariant); see the card for speed "
                                             "and accuracy against the fp32 model." if name.endswith("-int8") else "")
    return g


def new_card(name, base, d, g, val, onnx_bytes):
    ts = C.load(os.path.join(d, "train_summary.json")); cfg = ts["config"]; st = C.stage_times()
    int8 = name.endswith("-int8")
    bench = C.load(os.path.join(d, "bench_int8.json"))
    if bench:
        bench.update(fp32_bytes=os.path.getsize(os.path.join(d, "model.onnx")), int8_bytes=os.path.getsize(os.path.join(d, "model.int8.onnx")))
    L = [f"# {name} {C.VERSION}", "", g["description"], "",
         "**Demo model.** Small and trained from scratch in hours on CPU cores from offline data only: a working example of the "
         "artifact format and of every route, with honest figures, far below real pretrained models.", ""]
    if int8:
        L += [f"This is the int8 variant of `{base}` (same training, same `gateway.json` apart from name and description); "
              "the figures below are the fp32 model's unless the int8 section says otherwise.", ""]
    tok_t = st.get("tokenizer"); data_t = st.get("datasets")
    pre = (f"Shared stages: corpora, tokenizer and skip-gram word vectors {C.fmt_time(tok_t)}; datasets (windows, lexicon, BM25) "
           f"{C.fmt_time(data_t)}." if tok_t and data_t else "")
    if base == "qa-demo":
        ev = C.load(os.path.join(d, "eval.json")); nq = C.load(os.path.join(d, "eval_nq.json")); l15 = C.load(os.path.join(d, "eval_len15.json"))
        info = C.load(os.path.join(WORK, "qa", "train_info.json"))
        a, o, b = ev["answerable_no_answer_off"], ev["overall_no_answer_on"], ev["baselines"]
        L += ["## Task and interface", "",
              "Extractive question answering. Input: `[CLS] question [SEP] context [SEP]` (question = segment A, context = segment B, "
              "at most 256 tokens per window; the gateway reads longer contexts in windows sharing 64 tokens). Outputs "
              "`start_logits` and `end_logits` `[batch, sequence]`; position 0 ([CLS]) is the no-answer score.", "",
              f"`no_answer_threshold` = {g['no_answer_threshold']} in `gateway.json`: with `handle_impossible_answer: true` the "
              "gateway answers \"\" when null / (null + best) > t, where null = min over windows of p_start[CLS] * p_end[CLS] and "
              "best = the best span's p_start * p_end. It was chosen on dev (below) with SQuAD 2.0's best-threshold procedure. "
              "`handle_impossible_answer` stays false by default, as in Hugging Face's pipeline.", "",
              "## Architecture and size", "", C.arch_line(cfg, ts["parameters"], onnx_bytes, ", plus lexical-match features"), "",
              C.LEXICAL, "",
              "Attention masks padding with an additive bias and every feature is per row, so a row's outputs do not depend on the "
              f"other rows of its batch (checked with onnxruntime-node on {val['rows']} training windows of {min(val['lengths'])}-"
              f"{max(val['lengths'])} tokens: max |diff| alone vs padded batch {val['batchInvarianceMaxAbsDiff']:.1e}; vs PyTorch "
              f"{val['parityMaxAbsDiff']:.1e}). Never feed more than 256 tokens: the position table has 256 rows.", "",
              "## Data", "",
              f"Training: {info['squad_v1.0_train.json.gz']:,} SQuAD v1.0 train, {info['qed_nq_train.json']:,} QED/NQ train and "
              f"{info['covidqa_deepset_200423.json']:,} COVID-QA questions (first answer each), plus "
              f"{info['generated_negatives_squad_train']:,} generated unanswerable questions (a SQuAD train question paired with "
              "another paragraph of its own article that contains none of its answers; SQuAD 2.0 style, easier than SQuAD 2.0's "
              "adversarial ones). Contexts become the gateway's own windows (256 tokens, stride 64); a long context keeps the "
              f"window(s) holding the answer and one other, whose target is [CLS]: {info['train_windows']:,} training windows, "
              f"{info['train_windows_with_answer']:,} with an answer.", "",
              f"Development: all {ev['n_answerable']:,} questions of SQuAD-shifts new_wiki (48 new Wikipedia articles, 3-4 human "
              f"answers each) plus {ev['n_unanswerable']:,} generated negatives made the same way from new_wiki's own articles (kept "
              "apart from training's). Second held-out set: QED/NQ dev (Natural Questions, lower-case queries without '?').", "",
              "Sources and licences:", "", f"- {C.SQUAD}", f"- {C.QED}", f"- {C.COVID}", f"- {C.NEWWIKI}", f"- {C.PROSE}",
              f"- {C.DEBIAN_TOK}", "", C.SHAREALIKE, "", C.TOKENIZER, "",
              "## Training", "",
              f"Word embeddings start from skip-gram vectors trained on the shared corpus; everything else from random. Start/end "
              f"cross-entropy over [CLS] + context tokens, AdamW, peak LR {ts['lr']}, linear warm-up (6%) and decay, batch "
              f"{ts['batch_size']}, dropout 0.1, {ts['steps']:,} steps ({ts['epochs']:.1f} epochs), one torch thread: "
              f"{C.fmt_time(ts['seconds'])} of training in two resumable stages. {pre}", "",
              "## Evaluation (new_wiki dev, as the gateway serves it)", "",
              "The gateway's tokenizer and windows, onnxruntime-node, and the gateway's own `answerSpans` (softmax over [CLS] + "
              "context per window, p_start * p_end, spans widened to whole words, max_answer_length 30 as on `/v1/qa`); EM/F1 with "
              "the official SQuAD normalisation, best over the gold answers (`scripts/train/eval_qa.ts`).", "",
              "| figure | qa-demo | baselines on the same questions |", "|---|---|---|",
              f"| answerable questions ({ev['n_answerable']:,}), no-answer off: EM / F1 | **{a['em']:.1f} / {a['f1']:.1f}** | "
              f"best-overlap sentence F1 {b['best_overlap_sentence_f1']:.1f}, first sentence F1 {b['first_sentence_f1']:.1f} |",
              f"| answerable + generated negatives ({ev['n_answerable'] + ev['n_unanswerable']:,}), no-answer on at t = "
              f"{g['no_answer_threshold']}: EM / F1 | **{o['em']:.1f} / {o['f1']:.1f}** | always no answer {ev['always_no_answer']['f1']:.1f} |",
              f"| same, at the pipeline's default t = 0.5 | {ev['at_default_threshold_0_5']['em']:.1f} / {ev['at_default_threshold_0_5']['f1']:.1f} | |",
              f"| negatives abstained / answerable F1 with no-answer on | {ev['unanswerable_abstained']:.1f}% / {ev['answerable_no_answer_on']['f1']:.1f} | |"]
        if l15:
            L.append(f"| answerable, max_answer_length 15 (the HF route's default): EM / F1 | {l15['answerable_no_answer_off']['em']:.1f} / {l15['answerable_no_answer_off']['f1']:.1f} | |")
        if nq:
            L.append(f"| QED/NQ dev ({nq['n_answerable']:,}, second held-out set), no-answer off: EM / F1 | {nq['answerable_no_answer_off']['em']:.1f} / "
                     f"{nq['answerable_no_answer_off']['f1']:.1f} | best-overlap sentence F1 {nq['baselines']['best_overlap_sentence_f1']:.1f}, "
                     f"first sentence {nq['baselines']['first_sentence_f1']:.1f} |")
        L += ["", "Baselines (same questions, same normalisation): the context sentence with most words in common with the question, "
              "and the first sentence of the context. The issue's measurements of these on new_wiki were 24.0 and 12.7.", ""]
        L += C.int8_section(bench, ev, C.load(os.path.join(d, "eval_int8.json")), "qa") if int8 else []
        L += ["## Limitations", "",
              "- Far below pretrained readers (BERT-base reaches ~90 F1 on SQuAD-style text): it relies on words shared with the "
              "question and on answer-type cues; paraphrased questions, long answers, why/how questions and multi-sentence "
              "reasoning go wrong often.",
              "- The no-answer threshold was fitted to generated negatives (a question against another paragraph of its article), "
              "which are easier than real unanswerable questions; on adversarial ones (SQuAD 2.0 style) expect it to answer too often.",
              "- English Wikipedia-style prose; other domains (legal, chat, code) and other languages are out of scope.",
              "- Windows of 256 tokens: an answer spanning a window edge can be missed."]
    elif base == "rerank-demo":
        ev = C.load(os.path.join(d, "eval.json")); qa_ts = C.load(os.path.join(WORK, "qa", "qa-demo", "train_summary.json"))
        ri = C.load(os.path.join(WORK, "ret", "info.json"))
        m, bm = ev["model"], ev["bm25"]
        L += ["## Task and interface", "",
              "Text ranking (cross-encoder). Input: the pair `[CLS] query [SEP] passage [SEP]` (query = segment A, passage = "
              "segment B, at most 256 tokens). Output `logits` `[batch, 1]`; `gateway.json` `output: sigmoid` turns it into a "
              "relevance score in (0, 1). Scores rank passages for one query; they are not calibrated probabilities.", "",
              "## Architecture and size", "", C.arch_line(cfg, ts["parameters"], onnx_bytes, ", plus lexical-match features; "
              "head: tanh(W h[CLS]) -> 1 logit"), "", C.LEXICAL, "",
              f"Batch invariance checked with onnxruntime-node on {val['rows']} pairs ({min(val['lengths'])}-{max(val['lengths'])} "
              f"tokens): max |diff| {val['batchInvarianceMaxAbsDiff']:.1e}; vs PyTorch {val['parityMaxAbsDiff']:.1e}.", "",
              "## Data", "",
              f"{ts['train_questions']:,} questions of SQuAD v1.0 train and QED/NQ train over their {ri['train_paragraphs']:,} paragraphs. "
              f"Each step: {ts['questions_per_step']} questions, each with a group of {ts['group']} passages: its own paragraph and "
              "hard negatives (BM25's top paragraphs over all training paragraphs, two in three, and other paragraphs of its "
              "article), never a paragraph that contains one of its answers. Dev: the 7,938 new_wiki questions against the 1,581 "
              "new_wiki paragraphs (never trained on).", "",
              "Sources and licences:", "", f"- {C.SQUAD}", f"- {C.QED}", f"- {C.NEWWIKI}", f"- {C.PROSE}", f"- {C.DEBIAN_TOK}", "",
              C.SHAREALIKE, "", C.TOKENIZER, "",
              "## Training", "",
              f"Starts from qa-demo's weights (its encoder, lexical features and embeddings; its [CLS] state already says whether a "
              f"passage answers the question; qa-demo took {C.fmt_time(qa_ts['seconds'])}). Listwise softmax cross-entropy over each "
              f"group, AdamW, peak LR {ts['lr']}, linear decay, {ts['steps']:,} steps, one torch thread: {C.fmt_time(ts['seconds'])}. {pre}", "",
              "## Evaluation (new_wiki dev)", "",
              f"{ev['questions']:,} questions; candidates: {ev['candidates']}; gold = the paragraph the question was written on; "
              "the reranker reorders the same candidates BM25 returned (`scripts/train/eval_rank.ts`, onnxruntime-node and the "
              "gateway's tokenizer). BM25: Okapi k1 0.9, b 0.4 over folded, stemmed words without stopwords.", "",
              "| | MRR@10 | recall@1 | recall@5 | recall@20 |", "|---|---|---|---|---|",
              f"| rerank-demo over BM25 top 20 | **{m['mrr@10']:.3f}** | **{m['recall@1']:.3f}** | {m['recall@5']:.3f} | {m['recall@20']:.3f} |",
              f"| BM25 alone (the baseline) | {bm['mrr@10']:.3f} | {bm['recall@1']:.3f} | {bm['recall@5']:.3f} | {bm['recall@20']:.3f} |", ""]
        L += C.int8_section(bench, ev, C.load(os.path.join(d, "eval_int8.json")), "rerank") if int8 else []
        L += ["## Limitations", "",
              "- Trained on (question, Wikipedia paragraph) pairs: keyword queries, long documents (only the first 256 tokens of a "
              "pair are read per window) and other domains are weaker.",
              "- It leans on words shared between query and passage; a relevant passage that paraphrases the query can rank low.",
              "- Scores are comparable within one query, not across queries."]
    else:
        ev = C.load(os.path.join(d, "eval.json")); ri = C.load(os.path.join(WORK, "ret", "info.json"))
        m, bm, hy = ev["model"], ev["bm25"], ev["hybrid_rrf60"]
        L += ["## Task and interface", "",
              "Sentence / passage embeddings for retrieval. Input: one text as segment A (at most 256 tokens; questions and "
              "passages alike, no prefixes). Output `last_hidden_state` `[batch, sequence, hidden]`; the gateway mean-pools with "
              "the attention mask (`pooling: mean`), L2-normalises and compares with cosine.", "",
              "## Architecture and size", "", C.arch_line(cfg, ts["parameters"], onnx_bytes, ""), "",
              f"Batch invariance checked with onnxruntime-node on {val['rows']} texts ({min(val['lengths'])}-{max(val['lengths'])} "
              f"tokens): max |diff| {val['batchInvarianceMaxAbsDiff']:.1e}; vs PyTorch {val['parityMaxAbsDiff']:.1e}.", "",
              "## Data", "",
              f"{ts['train_questions']:,} questions of SQuAD v1.0 train and QED/NQ train with their paragraphs "
              f"({ri['train_paragraphs']:,}). Each step: {ts['questions_per_step']} questions, their paragraphs and one hard negative "
              "each (one of BM25's top wrong paragraphs, never one containing an answer). Dev: new_wiki (never trained on).", "",
              "Sources and licences:", "", f"- {C.SQUAD}", f"- {C.QED}", f"- {C.NEWWIKI}", f"- {C.PROSE}", f"- {C.DEBIAN_TOK}", "",
              C.SHAREALIKE, "", C.TOKENIZER, "",
              "## Training", "",
              f"{ts.get('init_text', 'Word embeddings from the skip-gram vectors, layers from random.')} InfoNCE (temperature "
              f"0.05) of each question against every paragraph of the step (its own, the other questions', the hard negatives), "
              f"mean pooling, AdamW, peak LR {ts['lr']}, linear decay, {ts['steps']:,} steps, one torch thread: "
              f"{C.fmt_time(ts['seconds'])}. {pre}", "",
              "## Evaluation (new_wiki dev)", "",
              f"{ev['questions']:,} questions against {ev['corpus']} (texts cut at 256 tokens); gold = the paragraph the question was "
              "written on (`scripts/train/eval_rank.ts`: the gateway's tokenizer, pooling and normalisation, onnxruntime-node). "
              "Hybrid: reciprocal rank fusion (k = 60) of BM25's and the model's top 100.", "",
              "| | recall@5 | recall@20 | recall@100 | MRR@10 |", "|---|---|---|---|---|",
              f"| retrieve-demo | **{m['recall@5']:.3f}** | **{m['recall@20']:.3f}** | {m['recall@100']:.3f} | {m['mrr@10']:.3f} |",
              f"| BM25 (the baseline) | {bm['recall@5']:.3f} | {bm['recall@20']:.3f} | {bm['recall@100']:.3f} | {bm['mrr@10']:.3f} |",
              f"| hybrid (RRF of both) | **{hy['recall@5']:.3f}** | **{hy['recall@20']:.3f}** | {hy['recall@100']:.3f} | {hy['mrr@10']:.3f} |", ""]
        L += C.int8_section(bench, ev, C.load(os.path.join(d, "eval_int8.json")), "retrieve") if int8 else []
        L += ["## Limitations", "",
              "- A 128-dimensional bag of contextual word pieces trained from scratch: it finds the right topic but misses exact "
              "names and numbers that BM25 matches; use it in hybrid mode (with keyword search) rather than alone.",
              "- Trained on Wikipedia question/paragraph pairs; not a general sentence-similarity model (sts-demo is that).",
              "- Texts longer than 256 tokens must be chunked (collections do)."]
    return "\n".join(L) + "\n"


def package_new(name):
    base = name[:-5] if name.endswith("-int8") else name
    d = NEW_DIRS[base]
    onnx_path = os.path.join(d, "model.int8.onnx" if name != base else "model.onnx")
    ref = reference(base, d)
    val = validate(onnx_path, ref, invariance_only=name != base)
    if name == base:
        json.dump(val, open(os.path.join(d, "validation.json"), "w"))
    g = new_gateway(name, base, d)
    cfg = json.load(open(os.path.join(d, "config.json")))
    files = {"config.json": json.dumps(cfg, indent=2) + "\n", "gateway.json": json.dumps(g, indent=2) + "\n",
             "MODEL_CARD.md": new_card(name, base, d, g, val, os.path.getsize(onnx_path))}
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        files[f] = open(os.path.join(WORK, f), encoding="utf-8").read()
    size = write_zip(name, files, onnx_path)
    summ = {"name": name, "zip_bytes": size, "gateway": g, "validation": val}
    json.dump(summ, open(os.path.join(d, f"summary{'-int8' if name != base else ''}.json"), "w"), indent=2)
    print(f"{name}: {size / 1e6:.2f} MB, batch invariance {val['batchInvarianceMaxAbsDiff']:.1e}")


ALL = ["qa-demo", "qa-demo-int8", "rerank-demo", "rerank-demo-int8", "retrieve-demo", "retrieve-demo-int8",
       "sts-demo", "essay-demo", "essay-demo-bands", "classify-demo"]  # sts-cross-demo: tried, not shipped (models/README.md)


if __name__ == "__main__":
    for n in sys.argv[1:] or ALL:
        if n.split("-int8")[0] in NEW_DIRS:
            if os.path.exists(os.path.join(NEW_DIRS[n.split("-int8")[0]], "model.int8.onnx" if n.endswith("-int8") else "model.onnx")):
                package_new(n)
        elif os.path.exists(os.path.join(WORK, "out", n, "model.onnx")):
            package(n)
