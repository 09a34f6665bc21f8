"""Give a packaged bi-encoder a lexical channel inside its graph (retrieve-demo 3.0.0; a stage of build-all.sh after packaging).

retrieve-demo alone is far below BM25 on questions written over their own paragraph (new_wiki dev recall@20 0.783 vs 0.971):
the words a question shares with its paragraph are what BM25 exploits and what a 2-layer, hidden-128 encoder trained for
a few thousand steps on these cores does not learn to keep. Salient-phrase-aware retrievers (SPAR, Chen et al. 2022)
close this gap by concatenating a dense embedding with a lexical one, so that one cosine scores both. This stage does it
without training, from the standard inputs, inside the ONNX graph:

  sentence_embedding = [ sqrt(a) * normalize(mean_pool(last_hidden_state)),  sqrt(1 - a) * normalize(lex) ]
  lex[h] = s(sum over the text's word pieces t with bucket(t) = h of sign(t) * idf(t)),  s(x) = sign(x) * sqrt(|x|)

- word pieces are folded (lower case, no accents) and whole-word pieces stemmed (qa_lexicon.stem), so "Rivers" and
  "river" meet; special tokens, punctuation and stopwords weigh 0;
- idf is BM25's, log(1 + (N - df + 0.5) / (df + 0.5)), counted over the 25,687 training paragraphs (SQuAD v1.0 train and
  QED/NQ train), never the development sets; a term none of them holds gets the largest idf;
- terms are feature-hashed (md5) into H = 896 signed buckets, so the embedding has 128 + 896 = 1,024 dimensions (the
  signed hash keeps the expected inner product; the square root damps repeated terms as BM25's saturation does);
- both halves are unit length, so the cosine of two embeddings is exactly a * dense cosine + (1 - a) * lexical cosine.
  a is chosen on QED/NQ dev (never trained on, not the development set) as the best recall@20 (ties: MRR@10) from 0.1 to
  0.9; the int8 variant takes the weight chosen for the fp32 model.

The sum runs as one ScatterElements(reduction add) over the tokens in order (opset 16): a padded token adds an exact 0, so
a text's embedding is the same alone and inside a padded batch. The graph's only output becomes `sentence_embedding`
(the gateway then serves it as a sentence-transformers export's, no pooling of its own); gateway.json, the card and the
version change, every other file is copied byte for byte. A zip whose graph already has the channel is left alone.

sts-demo gets the same channel with 128 buckets (its weight chosen on STS-B dev: see sts_channel).

usage: lexical.py --version 3.0.0 retrieve-demo [retrieve-demo-int8 ...] [sts-demo]   (zips under models/)
"""
import argparse, collections, hashlib, json, math, os, re, subprocess, sys, tempfile, zipfile
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
from common import WORK, ROOT, MODELS, pearson, spearman, similar_threshold, tokenize_rows
from build_tokenizer import load_squad, STS
from qa_lexicon import fold, stem
from data_retrieval import STOP
from calibrate_hybrid import dev_file, evaluate, put_section, rewrite, row

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(WORK, "lexical")
BUCKETS = 896
SEED = "lex"
WEIGHTS = [round(0.1 * i, 1) for i in range(1, 10)]
SECTION = "## The lexical channel"
TRAIN_FILES = ["squad_v1.0_train.json.gz", "qed_nq_train.json"]


def term(piece):
    """The lexical term of a word piece, or None (special token, punctuation, stopword)."""
    if piece.startswith("[") and piece.endswith("]"):
        return None
    if piece.startswith("##"):
        return "##" + fold(piece[2:])
    f = fold(piece)
    if f in STOP or not any(c.isalnum() for c in f):
        return None
    return stem(f)


def idf_of(tokenizer_path, terms):
    """BM25 idf per term over the training paragraphs, tokenized by the gateway's tokenizer (cached under $TRAIN_WORK/lexical)."""
    cache = os.path.join(OUT, "df-" + hashlib.sha1(open(tokenizer_path, "rb").read()).hexdigest()[:12] + ".json")  # per vocabulary
    if not os.path.exists(cache):
        paras = list(dict.fromkeys(p["context"] for name in TRAIN_FILES for art in load_squad(name) for p in art["paragraphs"]))
        df = collections.Counter()
        for r in tokenize_rows([{"a": p} for p in paras], os.path.join("lexical", "paras"), 100000, tokenizer=tokenizer_path):
            df.update({terms[i] for i in r["ids"] if terms[i]})
        json.dump({"paragraphs": len(paras), "df": df}, open(cache, "w"))
    d = json.load(open(cache))
    n = d["paragraphs"]
    return n, {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in d["df"].items()}, math.log(1 + (n + 0.5) / 0.5)


def tables(vocab_size, terms, idf, unseen, buckets=BUCKETS):
    bucket = np.zeros(vocab_size, np.int32)
    weight = np.zeros(vocab_size, np.float32)
    for i, t in enumerate(terms):
        if t is None:
            continue
        h = hashlib.md5((SEED + t).encode()).digest()
        bucket[i] = int.from_bytes(h[:4], "little") % buckets
        weight[i] = (-1.0 if h[4] & 1 else 1.0) * idf.get(t, unseen)
    return bucket, weight


def with_channel(model, bucket, weight, a, buckets=BUCKETS, hidden_size=128):
    """The graph with `sentence_embedding` = [sqrt(a) * dense, sqrt(1 - a) * lexical] as its only output."""
    g = model.graph
    hidden = next(o for o in g.output if o.name in ("last_hidden_state", "token_embeddings")).name
    C = lambda name, arr: g.initializer.append(numpy_helper.from_array(np.asarray(arr), "lex/" + name)) or "lex/" + name
    n = lambda op, ins, outs, **kw: g.node.append(helper.make_node(op, ins, ["lex/" + o for o in outs], name="lex/" + outs[0], **kw)) or "lex/" + outs[0]
    ax1, ax2 = C("axis1", np.array([1], np.int64)), C("axis2", np.array([2], np.int64))
    eps = C("eps", np.array(1e-12, np.float32))

    def unit(x, tag):
        sq = n("Mul", [x, x], [tag + "_sq"])
        norm = n("Sqrt", [n("ReduceSum", [sq, ax1], [tag + "_sqsum"], keepdims=1)], [tag + "_norm"])
        return n("Div", [x, n("Max", [norm, eps], [tag + "_normc"])], [tag + "_unit"])

    mask = n("Cast", ["attention_mask"], ["mask"], to=TensorProto.FLOAT)
    mask3 = n("Unsqueeze", [mask, ax2], ["mask3"])
    summed = n("ReduceSum", [n("Mul", [hidden, mask3], ["masked"]), ax1], ["hsum"], keepdims=0)
    count = n("Max", [n("ReduceSum", [mask3, ax1], ["count"], keepdims=0), C("one_min", np.array(1e-9, np.float32))], ["countc"])
    dense = n("Mul", [unit(n("Div", [summed, count], ["mean"]), "dense"), C("wd", np.array(math.sqrt(a), np.float32))], ["dense_w"])

    idx = n("Gather", [C("bucket", bucket), "input_ids"], ["idx"], axis=0)
    upd = n("Mul", [n("Gather", [C("weight", weight), "input_ids"], ["w"], axis=0), mask], ["upd"])
    rows = n("Slice", [n("Shape", ["input_ids"], ["shape"]), C("s0", np.array([0], np.int64)), C("s1", np.array([1], np.int64))], ["rows"])
    zeros = n("ConstantOfShape", [n("Concat", [rows, C("h", np.array([buckets], np.int64))], ["zshape"], axis=0)], ["zeros"],
              value=numpy_helper.from_array(np.zeros(1, np.float32)))
    raw = n("ScatterElements", [zeros, idx, upd], ["raw"], axis=1, reduction="add")
    damped = n("Mul", [n("Sign", [raw], ["sign"]), n("Sqrt", [n("Abs", [raw], ["abs"])], ["sqrt"])], ["damped"])
    lex = n("Mul", [unit(damped, "lexical"), C("wl", np.array(math.sqrt(1 - a), np.float32))], ["lexical_w"])
    g.node.append(helper.make_node("Concat", [dense, lex], ["sentence_embedding"], name="lex/concat", axis=1))
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", hidden_size + buckets]))
    for op in model.opset_import:
        if op.domain in ("", "ai.onnx"):
            op.version = max(op.version, 16)
    onnx.checker.check_model(model)
    return model


def section(name, a, n_paras, sweep, qed_dense, nw_dense, nw, bm25):
    L = [SECTION, "",
         "Since 3.0.0 the graph's output is `sentence_embedding`, 1,024 numbers: the encoder's mean-pooled, unit-length "
         f"vector (128) weighted sqrt({a}) and a lexical vector (896) weighted sqrt({round(1 - a, 1)}), so the cosine of two "
         f"embeddings is {a} x the encoder's cosine + {round(1 - a, 1)} x a TF-IDF cosine of their word pieces. The lexical vector "
         "is computed in the graph from `input_ids`: pieces folded (lower case, no accents) and stemmed, stopwords and "
         f"punctuation dropped, weighted by BM25's idf over the {n_paras:,} training paragraphs (SQuAD v1.0 train, QED/NQ train), "
         "feature-hashed into 896 signed buckets, square-rooted (repeated words count less) "
         "(`scripts/train/lexical.py`; the idea is SPAR's, Chen et al. 2022, with a fixed instead of a learned lexical model). "
         "No weight of the encoder changed. The weight was chosen on QED/NQ dev (1,200 Natural Questions over their 1,193 "
         "passages; never trained on, not the development set) as the best recall@20:", "",
         "| dense weight a | recall@5 | recall@20 | recall@100 | MRR@10 |", "|---|---|---|---|---|",
         row("encoder alone (a = 1, 2.x)", qed_dense)]
    L += [row(f"{w}" + ((" (chosen)" if len(sweep) > 1 else " (the fp32 model's choice)") if w == a else ""), sweep[w], w == a) for w in sorted(sweep)]
    L += ["", "new_wiki dev (7,938 questions against all 1,581 paragraphs; the development set):", "",
          "| | recall@5 | recall@20 | recall@100 | MRR@10 |", "|---|---|---|---|---|",
          row("encoder alone (2.x)", nw_dense), row(f"{name} (encoder + lexical channel, a = {a})", nw, True), row("BM25 (the baseline)", bm25), "",
          f"recall@20 is {bm25['recall@20'] - nw['recall@20']:.3f} below BM25's (the encoder alone: {bm25['recall@20'] - nw_dense['recall@20']:.3f}). "
          "The channel knows only the words of its training paragraphs' vocabulary and no phrase or word order; hashing "
          "puts ~18 vocabulary terms in each bucket, so a rare word can collide with another. Its cost: 8x the bytes per "
          "vector (4 KB) in a collection and in `/v1/embeddings` answers, and a cosine over 1,024 numbers.", ""]
    return "\n".join(L)


def describe(description, a):
    return description.replace(" (mean pooling, L2-normalised, cosine)", f" into one 1,024-number sentence_embedding (the encoder's mean-pooled "
                               f"vector weighted {a} and a hashed TF-IDF vector of its word pieces {round(1 - a, 1)}: one cosine scores both)")


def refresh(card, gateway):
    """The card's sentences written for the 2.x graph (token vectors, pooled by the gateway) rewritten for 3.x. Idempotent."""
    lines = card.split("\n")
    lines[2] = gateway["description"]  # the card's first paragraph is gateway.json's description
    card = "\n".join(lines)
    card = re.sub(r"Output `last_hidden_state` `\[batch, sequence, hidden\]`[^\n]*",
                  "Output `sentence_embedding` `[batch, 1024]` (since 3.0.0: the encoder's mean-pooled vector and a lexical vector in one, "
                  "see \"The lexical channel\"); the gateway L2-normalises it and compares with cosine.", card)
    card = card.replace(", opset 14, dynamic batch and sequence axes.",
                        ", opset 16 since 3.0.0 (the lexical channel's ScatterElements), dynamic batch and sequence axes; the channel adds "
                        "two tables of 16,384 (bucket, signed idf) and no trained weight.")
    card = card.replace("## Evaluation (new_wiki dev)\n\n7,938",
                        "## Evaluation (new_wiki dev)\n\nThe encoder alone, as trained (2.x); with the lexical channel (3.0.0): the next section.\n\n7,938")
    card = re.sub(r"- A 128-dimensional bag of contextual word pieces[^\n]*",
                  "- The encoder half is a 128-dimensional bag of contextual word pieces trained from scratch: it finds the right topic "
                  "but misses exact names and numbers. The lexical half matches words, not meanings: a question that shares no word "
                  "with its passage relies on the encoder, weighted 0.3. Alone the model is still below BM25 on these questions; "
                  "hybrid mode (with keyword search) is above it at recall@5 and @20.", card)
    return card


STS_BUCKETS = 128


def sts_cosines(zip_path, model_path, split):
    out = f"{model_path}.sts-{split}.json"
    subprocess.run(["node", "--import", "tsx", os.path.join(HERE, "eval_sts.ts"), "--zip", zip_path, "--model", model_path,
                    "--csv", os.path.join(STS, f"sts-{split}.csv"), "--out", out], check=True, cwd=ROOT)
    d = json.load(open(out))
    return np.array(d["cosine"]), np.array(d["gold"])


def sts_channel(name, version, zip_path, model, files, bucket, weight, chosen):
    """sts-demo: the channel with 128 buckets; its weight is the best STS-B dev Spearman of 0.1 to 0.9 (STS-B train cannot
    choose it: the encoder was fine-tuned there, train Spearman 0.91), reported with a two-fold estimate on dev (choose on
    the even rows, score the odd ones, and back). The similar/not threshold is chosen again on STS-B train, as before."""
    work = tempfile.mkdtemp(prefix=name + "-", dir=OUT)
    plain = os.path.join(work, "plain.onnx"); onnx.save(model, plain)
    hidden = json.loads(files["config.json"])["hidden_size"]
    enc_dev, gold_dev = sts_cosines(zip_path, plain, "dev")
    enc_train, gold_train = sts_cosines(zip_path, plain, "train")
    cos = {}
    for a in ([chosen] if chosen else WEIGHTS):
        path = os.path.join(work, f"a{a}.onnx")
        onnx.save(with_channel(onnx.load(plain), bucket, weight, a, STS_BUCKETS, hidden), path)
        cos[a] = sts_cosines(zip_path, path, "dev")[0]
    dev_sp = {a: spearman(c, gold_dev) for a, c in cos.items()}
    folds = None
    if not chosen:
        chosen = max(WEIGHTS, key=lambda w: round(dev_sp[w], 6))
        even, odd = np.arange(len(gold_dev)) % 2 == 0, np.arange(len(gold_dev)) % 2 == 1
        folds = []
        for pick, score in ((even, odd), (odd, even)):
            w = max(WEIGHTS, key=lambda x: round(spearman(cos[x][pick], gold_dev[pick]), 6))
            folds.append({"weight": w, "spearman": spearman(cos[w][score], gold_dev[score])})
    final = os.path.join(work, f"a{chosen}.onnx")
    train = sts_cosines(zip_path, final, "train")[0]
    best_acc, thr = similar_threshold(train, gold_train)
    dev = cos[chosen]
    m = {"dev": {"spearman": dev_sp[chosen], "pearson": pearson(dev, gold_dev), "accuracy": float(np.mean((dev >= thr) == (gold_dev >= 3.0)))},
         "train": {"spearman": spearman(train, gold_train), "pearson": pearson(train, gold_train), "accuracy": best_acc},
         "encoder": {"dev": {"spearman": spearman(enc_dev, gold_dev), "pearson": pearson(enc_dev, gold_dev)},
                     "train": {"spearman": spearman(enc_train, gold_train), "pearson": pearson(enc_train, gold_train)}},
         }
    gateway = json.loads(files["gateway.json"]); old = gateway["version"]
    old_thr = gateway.get("threshold")
    gateway["version"] = version; gateway.pop("pooling", None); gateway["threshold"] = round(thr, 3)
    gateway["description"] = gateway["description"].replace(
        "Sentence embeddings (mean pooling, L2-normalised, cosine similarity)",
        f"Sentence embeddings: the encoder's mean-pooled vector (weighted {chosen}) and a hashed TF-IDF vector of the word pieces "
        f"({round(1 - chosen, 1)}) in one {hidden + STS_BUCKETS}-number sentence_embedding, cosine similarity")
    card = files["MODEL_CARD.md"].decode().replace(f"# {name} {old}\n", f"# {name} {version}\n", 1)
    lines = card.split("\n"); lines[2] = gateway["description"]; card = "\n".join(lines)
    card = re.sub(r"Output `last_hidden_state` `\[batch, sequence, hidden\]`; pool with the attention mask \(mean\), L2-normalise, compare with cosine\. "
                  r"`gateway.json` `threshold` = [0-9.]+: the cosine at or above which a pair is called similar, chosen on STS-B train as the cut that best "
                  r"separates gold similarity >= 3.0 \(train accuracy [0-9.]+%\)\.",
                  f"Output `sentence_embedding` `[batch, {hidden + STS_BUCKETS}]` (since 3.0.0: the encoder's mean-pooled vector and a lexical vector "
                  "in one, see \"The lexical channel\"); L2-normalise, compare with cosine. "
                  f"`gateway.json` `threshold` = {round(thr, 3)}: the cosine at or above which a pair is called similar, chosen on STS-B train as the cut "
                  f"that best separates gold similarity >= 3.0 (train accuracy {100 * best_acc:.1f}%).", card)
    card = card.replace(", opset 14.", ", opset 16 since 3.0.0 (the lexical channel's ScatterElements; two tables of 16,384, no trained weight).")
    card = card.replace("## Held-out evaluation\n\n|", "## Held-out evaluation\n\nThe encoder alone, as trained (2.x); with the lexical channel (3.0.0): the next section.\n\n|")
    f = lambda x: f"{x:.3f}"
    L = [SECTION, "",
         f"Since 3.0.0 the graph's output is `sentence_embedding`, {hidden + STS_BUCKETS} numbers: the encoder's mean-pooled, unit-length vector "
         f"({hidden}) weighted sqrt({chosen}) and a lexical vector ({STS_BUCKETS}) weighted sqrt({round(1 - chosen, 1)}), so the cosine of two "
         f"embeddings is {chosen} x the encoder's cosine + {round(1 - chosen, 1)} x a TF-IDF cosine of their word pieces. The lexical vector is computed "
         "in the graph from `input_ids`: pieces folded (lower case, no accents) and stemmed, stopwords and punctuation dropped, weighted by BM25's "
         "idf over the SQuAD v1.0 and QED/NQ training paragraphs, feature-hashed into 128 signed buckets, square-rooted "
         "(`scripts/train/lexical.py`, the same channel as retrieve-demo 3.0.0's with fewer buckets: sentences are short). No weight of the "
         "encoder changed. The weight is the best STS-B dev Spearman of 0.1 to 0.9: STS-B train cannot choose it (the encoder was "
         "fine-tuned there), and no other labelled similarity set is at hand, so **the dev figure is not a held-out one**; the two-fold "
         "estimate below (choose on half of dev, score the other half, both ways) is.", "",
         "| dense weight a | STS-B dev Spearman |", "|---|---|", f"| encoder alone (a = 1, 2.x) | {f(m['encoder']['dev']['spearman'])} |"]
    L += [f"| {a}{' (chosen)' if a == chosen and len(cos) > 1 else ' (the fp32 model' + chr(39) + 's choice)' if a == chosen else ''} | "
          + (f"**{f(dev_sp[a])}**" if a == chosen else f(dev_sp[a])) + " |" for a in sorted(cos)]
    if folds:
        L += ["", "Two-fold estimate of choosing the weight on dev: " + "; ".join(
            f"chosen on the {'even' if i == 0 else 'odd'} rows {x['weight']}, Spearman on the {'odd' if i == 0 else 'even'} rows {f(x['spearman'])}"
            for i, x in enumerate(folds)) + f" (mean {f(sum(x['spearman'] for x in folds) / 2)})."]
    L += ["", "| split | Spearman | Pearson | similar/not accuracy at the threshold |", "|---|---|---|---|",
          f"| STS-B dev (1,500) | **{f(m['dev']['spearman'])}** | {f(m['dev']['pearson'])} | {100 * m['dev']['accuracy']:.1f}% |",
          f"| STS-B train (5,749; the encoder was fine-tuned here) | {f(m['train']['spearman'])} | {f(m['train']['pearson'])} | {100 * best_acc:.1f}% |", "",
          f"The threshold moved from {old_thr} to {round(thr, 3)} (scores of the mixed cosine sit lower: two sentences sharing no word "
          f"score at most {chosen} x their encoder cosine). What the channel cannot do: a paraphrase with other words gets only the encoder's "
          "part, and a negation or swapped roles with the same words scores as similar.", ""]
    text = "\n".join(L)
    card = put_section(card, SECTION, text, ["## Limitations"])
    rewrite(zip_path, gateway, card, {"model.onnx": open(final, "rb").read()})
    result = {"model": name, "version": version, "dense_weight": chosen, "buckets": STS_BUCKETS, "threshold": round(thr, 3), "dev_sweep": {str(a): v for a, v in dev_sp.items()},
              "two_fold": folds, **m}
    json.dump(result, open(os.path.join(OUT, f"lexical-{name}.json"), "w"), indent=1)
    print(json.dumps(result))
    return chosen


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--version", required=True)
    ap.add_argument("names", nargs="+")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    qed = dev_file("qed-dev.json", "qed_nq_dev.json")
    nw_dev = dev_file("newwiki-dev.json", "squadshifts_new_wiki_v1.0.json")
    weights = {}  # model family -> its dense weight: the fp32 model chooses it, its int8 variant takes it
    for name in args.names:
        base = name.removesuffix("-int8")
        chosen = weights.get(base)
        zip_path = os.path.join(MODELS, name + ".zip")
        with zipfile.ZipFile(zip_path) as z:
            model = onnx.load_from_string(z.read("model.onnx"))
            files = {f: z.read(f) for f in ("tokenizer.json", "gateway.json", "MODEL_CARD.md", "config.json")}
        if any(o.name == "sentence_embedding" for o in model.graph.output):
            done = os.path.join(OUT, f"lexical-{name}.json")
            weights.setdefault(base, json.load(open(done))["dense_weight"] if os.path.exists(done) else None)
            gateway, card = json.loads(files["gateway.json"]), files["MODEL_CARD.md"].decode()
            fresh = refresh(card, gateway) if name.startswith("retrieve-demo") else card
            if fresh != card:
                rewrite(zip_path, gateway, fresh)
            print(f"{name}: the graph has sentence_embedding already; the graph left alone, the card refreshed")
            continue
        tok_path = os.path.join(OUT, "tokenizer.json")
        open(tok_path, "wb").write(files["tokenizer.json"])
        vocab = json.loads(files["tokenizer.json"])["model"]["vocab"]
        pieces = [None] * len(vocab)
        for p, i in vocab.items():
            pieces[i] = p
        terms = [term(p) for p in pieces]
        n_paras, idf, unseen = idf_of(tok_path, terms)
        if name.startswith("sts-demo"):
            bucket, weight = tables(len(pieces), terms, idf, unseen, STS_BUCKETS)
            weights[base] = sts_channel(name, args.version, zip_path, model, files, bucket, weight, chosen)
            continue
        bucket, weight = tables(len(pieces), terms, idf, unseen)
        work = tempfile.mkdtemp(prefix=name + "-", dir=OUT)
        plain = os.path.join(work, "plain.onnx")
        onnx.save(model, plain)
        qed_dense, nw_dense = evaluate(zip_path, qed, model=plain)["model"], evaluate(zip_path, nw_dev, model=plain)
        sweep = {}
        for a in ([chosen] if chosen else WEIGHTS):
            path = os.path.join(work, f"a{a}.onnx")
            onnx.save(with_channel(onnx.load(plain), bucket, weight, a), path)
            sweep[a] = evaluate(zip_path, qed, model=path)["model"]
        if not chosen:
            chosen = max(WEIGHTS, key=lambda w: (round(sweep[w]["recall@20"], 6), round(sweep[w]["mrr@10"], 6)))
        weights[base] = chosen
        final = os.path.join(work, f"a{chosen}.onnx")
        nw = evaluate(zip_path, nw_dev, model=final)
        gateway = json.loads(files["gateway.json"])
        old = gateway["version"]
        gateway["version"] = args.version
        gateway.pop("pooling", None)  # the graph pools
        gateway["description"] = describe(gateway["description"], chosen)
        card = refresh(files["MODEL_CARD.md"].decode().replace(f"# {name} {old}\n", f"# {name} {args.version}\n", 1), gateway)
        text = section(name, chosen, n_paras, sweep, qed_dense, nw_dense["model"], nw["model"], nw["bm25"])
        card = put_section(card, SECTION, text, ["## Hybrid retrieval", "## Limitations"])
        rewrite(zip_path, gateway, card, {"model.onnx": open(final, "rb").read()})
        result = {"model": name, "version": args.version, "dense_weight": chosen, "qed": {"encoder": qed_dense, "sweep": {str(k): v for k, v in sweep.items()}},
                  "new_wiki": {"encoder": nw_dense["model"], "model": nw["model"], "bm25": nw["bm25"]}}
        json.dump(result, open(os.path.join(OUT, f"lexical-{name}.json"), "w"), indent=1)
        print(json.dumps(result))


if __name__ == "__main__":
    main()
