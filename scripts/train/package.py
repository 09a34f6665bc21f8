"""Package one trained model as models/<name>.zip: HF layout + gateway.json + MODEL_CARD.md.
Validates the ONNX graph with onnxruntime-node first (parity with PyTorch and batch invariance).

usage: package.py NAME [NAME...]
"""
import json, os, subprocess, sys, zipfile
from common import WORK, HERE, ROOT, MODELS, TOPICAL

VERSION = "1.0.0"
DEBIAN = ("Debian 12 \"bookworm\" archive metadata: the `main` Packages index (apt lists after `apt-get update`) and the "
          "`main/i18n/Translation-en` description index fetched from deb.debian.org and checked against the release's "
          "InRelease SHA256. Package descriptions are written by each package's maintainers and ship with the packages of "
          "Debian main, so they fall under those packages' DFSG-free licences; maintainer names, versions, sections, "
          "sizes and dependencies are factual metadata.")
WORDNET = "WordNet 3.0 (Debian `wordnet-base`), Princeton University, WordNet 3.0 licence (permissive, BSD-style, attribution)."
STS = ("STS Benchmark (`../shared/data/stsbenchmark`, Cer et al. 2017): scores CC BY-SA 4.0; the sentences keep the "
       "licences of their original sources (MSR video/paraphrase corpora, news headlines, image captions, forums), see its LICENSE.txt.")

TASKS = {
    "qa-demo": dict(task="question-answering", output="identity", max_length=256,
                    description="Extractive QA (SQuAD 2.0 style, can answer 'no answer') over short factual English paragraphs; "
                                "trained on Debian package facts and WordNet definitions."),
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
    "classify-demo": dict(task="text-classification", output="softmax", max_length=128, labels=TOPICAL,
                          description="Software description -> Debian archive section, over ten topical sections."),
}


def gateway_json(name, metrics):
    t = TASKS[name]
    g = {"name": name, "version": VERSION, "task": t["task"], "max_length": t["max_length"]}
    for k in ("labels", "output", "pooling", "score"):
        if k in t:
            g[k] = t[k]
    if name == "sts-demo":
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
            f"(max {cfg['max_position_embeddings']}), WordPiece vocabulary of {cfg['vocab_size']} (lower-cased). "
            f"{m['parameters'] / 1e6:.2f} M parameters, `model.onnx` {onnx_bytes / 1e6:.1f} MB fp32, opset 14.")
    pre = (f"Shared encoder pre-trained from scratch with masked-language modelling (15% masking, packed sequences of "
           f"{m['pretrain_seq']} tokens, batch {m['pretrain_batch']}) for {m['pretrain_steps']} steps "
           f"({fmt_time(m['pretrain_seconds'])} on one CPU thread; final MLM loss {m['pretrain_mlm_loss']}) on Debian descriptions, "
           f"WordNet glosses and STS-B train sentences; held-out ('test') packages and synsets were excluded.")
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
    if name == "qa-demo":
        L += ["Extractive question answering, SQuAD 2.0 style. Input: `[CLS] question [SEP] context [SEP]` (question = segment A, "
              "context = segment B, at most 256 tokens). Outputs `start_logits` and `end_logits` `[batch, sequence]`; the best span "
              "inside the context is compared with the no-answer score `start_logits[0] + end_logits[0]` ([CLS]).", ""]
        sources = [DEBIAN, WORDNET]
        L_data = ("Synthetic reading-comprehension examples built from real facts. Debian contexts (80%) mix 2-4 facts about a target "
                  "package and two distractor packages (maintainer, section, homepage, version, installed size, source package, "
                  "dependencies, summary; 2-4 sentence templates per fact) with the first 12-35 words of the target's real long "
                  "description, in random order; WordNet contexts (20%) hold 3-5 definitions or 'is a kind of' facts. About a third "
                  "of the questions are unanswerable: the fact is stated only for a distractor package, or the package/word asked "
                  "about is absent. Questions use 2-6 phrasings per fact type; **2-3 further phrasings per type are held out** and "
                  "appear only in the test set. Packages are split by Debian *source* package (80/10/10), synsets by id; "
                  f"{M['train_n']} training examples. Examples whose answer would be cut by the 256-token limit were dropped (~3%).")
        rows = [("test, held-out phrasings", M["test_heldout_phrasings"]), ("test, training phrasings", M["test_seen_phrasings"]),
                ("dev, training phrasings", M["dev"])]
        metric_lines += ["| split | n | EM | F1 | EM answerable | EM unanswerable | first-sentence baseline EM / F1 | always-no-answer EM / F1 |",
                         "|---|---|---|---|---|---|---|---|"]
        for lbl, r in rows:
            metric_lines.append(f"| {lbl} | {r['overall']['n']} | **{r['overall']['em']:.1f}** | **{r['overall']['f1']:.1f}** | "
                                f"{r['answerable']['em']:.1f} | {r['unanswerable']['em']:.1f} | "
                                f"{r['baseline_first_sentence']['em']:.1f} / {r['baseline_first_sentence']['f1']:.1f} | "
                                f"{r['baseline_always_no_answer']['em']:.1f} / {r['baseline_always_no_answer']['f1']:.1f} |")
        metric_lines += ["", "SQuAD-style EM/F1 (lower-case, no punctuation or articles; an empty prediction is correct only on an "
                         "unanswerable question). Baselines on the same split: answer with the first sentence of the context; "
                         "always answer 'no answer'. Decoding: best span of at most 64 tokens inside the context vs the [CLS] score.", "",
                         "Per fact type, test with held-out phrasings (EM / F1):", "", "| fact | n | EM | F1 |", "|---|---|---|---|"]
        for k, r in M["test_heldout_phrasings"]["by_fact"].items():
            metric_lines.append(f"| {k} | {r['n']} | {r['em']:.1f} | {r['f1']:.1f} |")
        notes += ["**Weak.** The model ranks candidate spans partly right (short facts such as sizes and sections) but its "
                  "no-answer score wins on most answerable questions, so it mostly abstains: it is only a little above the "
                  "always-no-answer baseline. A no-answer offset tuned on dev (SQuAD 2.0 practice) gained under 1 F1 on dev, so "
                  "none is applied; 600 more steps at a lower LR gave +0.2 F1 / -0.5 EM on dev and were not kept. It needs far "
                  "more training than this session allowed.",
                  "Contexts and questions are synthetic (templated sentences around real facts); expect much lower quality on "
                  "free-form text and on question types it never saw (why/how questions, numbers in prose).",
                  "Long answers (dependency lists, definitions) are harder than short ones (versions, sections)."]
    elif name == "sts-demo":
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
          "", "Tokenizer: one WordPiece vocabulary shared by all demo models, learned on the same training text; training data was "
          "tokenized with the Rust tokenizer on this very `tokenizer.json` (`@anush008/tokenizers`), as the gateway does.", "",
          "## Training", "", pre, "", ft, "", f"Training time: {fmt_time(total)} in all ({fmt_time(m['pretrain_seconds'])} shared "
          f"pre-training + {fmt_time(ft_secs)} fine-tuning), one thread of a shared 2-core VM. Seeds fixed; rebuild "
          "with `npm run models:build` (scripts in `scripts/train/`).", "",
          "## Held-out evaluation", ""] + metric_lines + ["", "## Limitations", ""] + [f"- {n}" for n in notes] + [
          "- English only, lower-cased vocabulary of 8k pieces; rare words split into many pieces.",
          "- fp32 only: dynamic int8 quantization is not shipped (see models/README.md)."]
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
    assert size <= 10 * 1024 * 1024, f"{name}.zip is {size} bytes"
    json.dump({"name": name, "zip_bytes": size, "gateway": g, "metrics": m, "validation": val},
              open(os.path.join(out, "summary.json"), "w"), indent=2)
    print(f"{name}: {size / 1e6:.2f} MB, batch invariance {val['batchInvarianceMaxAbsDiff']:.1e}")


if __name__ == "__main__":
    for n in sys.argv[1:]:
        package(n)
