"""Write models/README.md from the packaged models' summaries (.work/out/*/summary.json) and .work/findings.json."""
import json, os
from common import WORK, MODELS

ORDER = ["qa-demo", "sts-demo", "essay-demo", "essay-demo-bands", "classify-demo"]


def mins(s):
    return f"{s / 60:.1f} min"


def headline(name, M):
    if name == "qa-demo":
        t = M["test_heldout_phrasings"]
        return (f"test, held-out phrasings: EM {t['overall']['em']:.1f} / F1 {t['overall']['f1']:.1f} "
                f"(first-sentence baseline {t['baseline_first_sentence']['em']:.1f} / {t['baseline_first_sentence']['f1']:.1f}; "
                f"always-no-answer {t['baseline_always_no_answer']['em']:.1f} / {t['baseline_always_no_answer']['f1']:.1f})")
    if name == "sts-demo":
        d = M["dev"]
        return f"STS-B dev Spearman {d['spearman']:.3f} (word-overlap baseline {d['baseline_word_overlap']['spearman']:.3f})"
    if name.startswith("essay"):
        t = M["test"]; b = t["baseline_length"]
        return f"test QWK {t['qwk']:.3f}, Pearson {t['pearson']:.3f} (length-only baseline {b['qwk']:.3f}, {b['pearson']:.3f})"
    t = M["test"]; b = t["baseline_majority"]
    return (f"test accuracy {100 * t['accuracy']:.1f}%, macro-F1 {t['macro_f1']:.3f} "
            f"(majority class {100 * b['accuracy']:.1f}%, {b['macro_f1']:.3f})")


def main():
    f = json.load(open(os.path.join(WORK, "findings.json"))) if os.path.exists(os.path.join(WORK, "findings.json")) else {}
    rows, pre = [], None
    for n in ORDER:
        p = os.path.join(WORK, "out", n, "summary.json")
        if not os.path.exists(p):
            continue
        s = json.load(open(p)); m = s["metrics"]; pre = m
        rows.append(f"| [`{n}.zip`]({n}.zip) | {s['gateway']['task']} | {s['zip_bytes'] / 1e6:.1f} MB | {headline(n, m['metrics'])} | "
                    f"{mins(m['finetune_seconds'] + (m['previous']['finetune_seconds'] if m.get('previous') else 0))} fine-tuning (+ shared pre-training) |")
    L = ["# Demo model zoo", "",
         "Five small models the gateway serves out of the box, trained offline on this project's machines from Debian "
         "package metadata, WordNet and the STS Benchmark. Each zip is a complete model artifact in the format of "
         "`../shared/API.md` \"Model artifacts\": `config.json`, `tokenizer.json` (+ `tokenizer_config.json`, "
         "`special_tokens_map.json`), `model.onnx` (fp32, opset 14, inputs `input_ids`/`attention_mask`/`token_type_ids`, "
         "dynamic batch and sequence), `gateway.json` and `MODEL_CARD.md` (data, licences, training, held-out metrics). "
         "They are demos: tiny (4 layers, hidden 128, 1.9 M parameters) and trained for minutes, good enough to exercise "
         "every route with real outputs, not for real use.", "",
         "| model | task | zip | held-out metric (vs trivial baseline, same split) | training time |", "|---|---|---|---|---|"] + rows
    if pre:
        L += ["", f"All five start from one shared encoder pre-trained with masked-language modelling for {pre['pretrain_steps']} steps "
              f"({mins(pre['pretrain_seconds'])} on one thread). All times are one torch thread on a 2-core VM shared with other work."]
    L += ["", "Weak spots, plainly: `qa-demo` mostly abstains (answerable questions: EM 6 on held-out phrasings) and beats the "
          "always-no-answer baseline by about 1 EM / 2.5 F1 only; the essay scorers measure coherence of corrupted software "
          "descriptions, not essay quality, and are only moderately better than length (QWK ~0.2). See each MODEL_CARD.md.",
          "", "The shared `tokenizer.json` gives the same ids in `@anush008/tokenizers` (Rust, used for training data and by the "
          "gateway) and in `@huggingface/transformers` (checked on a few pairs with accents, CJK and punctuation)."]
    L += ["", "## Rebuild", "", "```", "npm run models:build      # = bash scripts/train/build-all.sh", "```", ""]
    L += f.get("rebuild", ["(wall time: see below)"])
    L += ["", "Training does not run in CI. The test `test/models/zoo.test.ts` (part of `npm test`) unzips every model, "
          "checks its layout and `gateway.json` against a schema, loads it with onnxruntime-node and the tokenizer with "
          "`@anush008/tokenizers`, checks input/output names, batch invariance, and runs one real input.", "",
          "## Quantization: shipped as fp32", ""]
    L += f.get("int8", ["(not measured yet)"])
    open(os.path.join(MODELS, "README.md"), "w").write("\n".join(L) + "\n")


if __name__ == "__main__":
    main()
