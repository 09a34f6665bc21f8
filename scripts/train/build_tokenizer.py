"""Build the shared corpus and learn one WordPiece vocabulary (BPE-style merges, as HF's WordPiece trainer does).

Corpus: English expository prose (../shared/data/prose: OpenStax textbooks, the SQuAD train articles), the contexts and
questions of the QA *training* files (QED/NQ train, COVID-QA; never the dev sets), Debian package descriptions and
WordNet glosses (held-out 'test' packages and synsets excluded) and STS-B train sentences.

Writes .work/corpus.txt (one document per line) and .work/tokenizer.json in Hugging Face format:
BertNormalizer (cased by default: CASED=0 lower-cases), BertPreTokenizer, WordPiece(##),
TemplateProcessing [CLS] $A [SEP] $B:1 [SEP]:1.
"""
import collections, csv, glob, gzip, heapq, json, os, re, sys, unicodedata
from common import WORK, read_jsonl, split_of

VOCAB_SIZE = int(os.environ.get("VOCAB_SIZE", 16384))
CASED = os.environ.get("CASED", "1") == "1"
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SHARED = os.environ.get("SHARED_DATA", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../shared/data"))
STS = os.path.join(SHARED, "stsbenchmark")
PROSE = os.path.join(SHARED, "prose")
QA = os.path.join(SHARED, "qa-train")
QA_TRAIN_FILES = ["squad_v1.0_train.json.gz", "qed_nq_train.json", "covidqa_deepset_200423.json"]


def load_squad(name):
    path = os.path.join(QA, name)
    with (gzip.open(path, "rt", encoding="utf-8") if name.endswith(".gz") else open(path, encoding="utf-8")) as fh:
        return json.load(fh)["data"]


def prose_blocks():
    """Blocks (paragraphs) of the prose files; title and heading lines are kept as short blocks."""
    for path in sorted(glob.glob(os.path.join(PROSE, "*.txt"))):
        with open(path, encoding="utf-8") as fh:
            for block in fh.read().split("\n\n"):
                block = " ".join(block.split())
                if block:
                    yield block


def sts_rows(split):
    rows = []
    with open(os.path.join(STS, f"sts-{split}.csv"), encoding="utf-8") as fh:
        for line in fh:
            f = line.rstrip("\n").split("\t")
            if len(f) >= 7:
                rows.append((float(f[4]), f[5], f[6]))
    return rows


def build_corpus():
    docs, seen = [], set()
    for p in read_jsonl(os.path.join(WORK, "packages.jsonl")):
        if split_of(p["source"]) == "test":  # held-out packages never reach the vocabulary or pre-training
            continue
        t = (p["short"] + ". " + p["long"]).replace("\n\n", " ")
        if t not in seen:
            seen.add(t); docs.append(t)
    for s in read_jsonl(os.path.join(WORK, "wordnet.jsonl")):
        if split_of(s["id"]) == "test":
            continue
        docs.append(", ".join(s["words"]) + ": " + s["gloss"] + (". " + " ".join(s["examples"]) if s["examples"] else ""))
    for _, a, b in sts_rows("train"):
        docs.append(a); docs.append(b)
    docs += list(prose_blocks())  # includes the SQuAD train paragraphs (the wikipedia file)
    for name in QA_TRAIN_FILES[1:]:
        for art in load_squad(name):
            for p in art["paragraphs"]:
                docs.append(p["context"])
    for name in QA_TRAIN_FILES:
        for art in load_squad(name):
            for p in art["paragraphs"]:
                docs.append(" ".join(q["question"] for q in p["qas"]))
    with open(os.path.join(WORK, "corpus.txt"), "w") as fh:
        for d in docs:
            fh.write(d.replace("\n", " ") + "\n")
    return docs


def is_punct(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def normalize(t):
    if not CASED:
        t = "".join(c for c in unicodedata.normalize("NFD", t.lower()) if unicodedata.category(c) != "Mn")
    return t


PUNCT_CACHE = {}


def pretokenize(t):
    """BertPreTokenizer: split on whitespace, every punctuation character is a word of its own."""
    out = []
    for w in normalize(t).split():
        if w.isalnum():
            out.append(w); continue
        cur = ""
        for ch in w:
            p = PUNCT_CACHE.get(ch)
            if p is None:
                p = PUNCT_CACHE[ch] = 2 if is_punct(ch) else 1 if unicodedata.category(ch) in ("Cc", "Cf") else 0
            if p:
                if cur: out.append(cur)
                cur = ""
                if p == 2: out.append(ch)
            else:
                cur += ch
        if cur: out.append(cur)
    return out


def learn(docs):
    counts = collections.Counter()
    for d in docs:
        counts.update(pretokenize(d))
    chars = collections.Counter()
    for w, c in counts.items():
        for ch in w:
            chars[ch] += c
    alphabet = [ch for ch, c in chars.most_common() if c >= 30]
    aset = set(alphabet)
    vocab = list(SPECIALS)
    vocab += alphabet + ["##" + ch for ch in alphabet]
    words, freqs = [], []
    for w, c in counts.items():
        if len(w) > 100 or any(ch not in aset for ch in w):
            continue
        words.append([w[0]] + ["##" + ch for ch in w[1:]]); freqs.append(c)
    pairs = collections.Counter(); where = collections.defaultdict(set)
    for i, sy in enumerate(words):
        for a, b in zip(sy, sy[1:]):
            pairs[(a, b)] += freqs[i]; where[(a, b)].add(i)
    heap = [(-c, p) for p, c in pairs.items()]; heapq.heapify(heap)
    vset = set(vocab)
    while len(vocab) < VOCAB_SIZE and heap:
        negc, p = heapq.heappop(heap)
        if pairs.get(p, 0) != -negc or -negc <= 0:
            continue
        a, b = p
        new = a + b[2:] if b.startswith("##") else a + b
        if new not in vset:
            vocab.append(new); vset.add(new)
        changed = collections.Counter()
        for i in list(where[p]):
            sy = words[i]; f = freqs[i]; j = 0; out = []
            while j < len(sy):
                if j + 1 < len(sy) and sy[j] == a and sy[j + 1] == b:
                    out.append(new); j += 2
                else:
                    out.append(sy[j]); j += 1
            if out == sy:
                continue
            for x, y in zip(sy, sy[1:]):
                pairs[(x, y)] -= f; changed[(x, y)] += 0
            for x, y in zip(out, out[1:]):
                pairs[(x, y)] += f; where[(x, y)].add(i); changed[(x, y)] += 0
            words[i] = out
        del pairs[p]; where.pop(p, None)
        for q in changed:
            if q in pairs and pairs[q] > 0:
                heapq.heappush(heap, (-pairs[q], q))
    return vocab


def tokenizer_json(vocab):
    ids = {t: i for i, t in enumerate(vocab)}
    added = [dict(id=ids[t], content=t, single_word=False, lstrip=False, rstrip=False, normalized=False, special=True) for t in SPECIALS]
    cls, sep = ids["[CLS]"], ids["[SEP]"]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True, "strip_accents": None, "lowercase": not CASED},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}}, {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [cls], "tokens": ["[CLS]"]}, "[SEP]": {"id": "[SEP]", "ids": [sep], "tokens": ["[SEP]"]}}},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": ids},
    }


def main():
    docs = build_corpus()
    print("docs", len(docs), file=sys.stderr)
    if os.environ.get("TOKENIZER_FROM"):
        # The zoo's models must share one vocabulary: a retrain of some of them reuses the shipped one (a zip's
        # tokenizer.json, e.g. models/qa-demo.zip) instead of learning it again from the same corpus.
        import zipfile
        with zipfile.ZipFile(os.environ["TOKENIZER_FROM"]) as z:
            model = json.loads(z.read("tokenizer.json"))["model"]["vocab"]
        vocab = [t for t, _ in sorted(model.items(), key=lambda kv: kv[1])]
        print("vocab reused from", os.environ["TOKENIZER_FROM"], file=sys.stderr)
    else:
        vocab = learn(docs)
    print("vocab", len(vocab), file=sys.stderr)
    with open(os.path.join(WORK, "tokenizer.json"), "w") as fh:
        json.dump(tokenizer_json(vocab), fh, ensure_ascii=False, indent=1)
    with open(os.path.join(WORK, "tokenizer_config.json"), "w") as fh:
        json.dump({"tokenizer_class": "BertTokenizerFast", "do_lower_case": not CASED, "model_max_length": 256,
                   "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]",
                   "clean_up_tokenization_spaces": True, "strip_accents": None, "tokenize_chinese_chars": True}, fh, indent=1)
    with open(os.path.join(WORK, "special_tokens_map.json"), "w") as fh:
        json.dump({"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}, fh, indent=1)


if __name__ == "__main__":
    main()
