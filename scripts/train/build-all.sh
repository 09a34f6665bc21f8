#!/usr/bin/env bash
# Rebuild the demo model zoo (models/*.zip) from offline sources. Not run in CI.
# Needs: Debian bookworm with apt lists (apt-get update), node_modules installed (npm ci), root for apt-get, and the
# shared data folder ../shared/data (SHARED_DATA overrides it). Wall time per stage on a shared 2-core VM: models/README.md.
#
# Every stage is resumable: it is skipped when its outputs exist, and the long training stages continue from their last
# checkpoint (saved every 10 minutes) when re-run after an interruption. Delete a stage's outputs under $TRAIN_WORK to
# redo it. Each stage runs on one CPU thread (nice 10) and takes at most about two hours.
#   bash scripts/train/build-all.sh [--data-only] [--only STAGE...]
# TOKENIZER_FROM=models/qa-demo.zip reuses a shipped zip's vocabulary instead of learning it again (how the sts, classify
# and essay models of 2.0.0 were retrained onto the vocabulary of the qa, rerank and retrieve models).
set -euo pipefail
cd "$(dirname "$0")"
PY="nice -n 10 /usr/bin/python3"   # Debian's python, which sees python3-torch / python3-onnx
export TRAIN_WORK="${TRAIN_WORK:-$PWD/.work}"   # cache/work folder (gitignored)
export PRETRAINED="$TRAIN_WORK/pretrained.pt"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1   # one core: torch.set_num_threads(1) alone leaves OpenBLAS threads
WORK="$TRAIN_WORK"
mkdir -p "$WORK"
DATA_ONLY=0; ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --data-only) DATA_ONLY=1 ;;
    --only) shift; ONLY="$ONLY $1" ;;
  esac
  shift
done
TIMES="$WORK/stage_times.jsonl"
step() { echo "== $(date -u +%H:%M:%S) $*"; }
# stage NAME DONE-FILE COMMAND...: run unless DONE-FILE exists (or --only lists other stages); log its wall time
stage() {
  local name=$1 done=$2; shift 2
  if [ -n "$ONLY" ] && [[ " $ONLY " != *" $name "* ]]; then return 0; fi
  if [ -e "$done" ]; then step "$name: done already ($done)"; return 0; fi
  step "$name"
  local t0; t0=$(date +%s)
  "$@"
  printf '{"stage": "%s", "seconds": %d, "finished": "%s"}\n' "$name" $(( $(date +%s) - t0 )) "$(date -u +%FT%TZ)" >> "$TIMES"
}

step "system packages"
need=()
for p in python3-torch python3-onnx python3-numpy libopenblas0-pthread wordnet-base lz4 xz-utils; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then apt-get update && apt-get install -y "${need[@]}"; fi

translation() {
  inrel=$(ls /var/lib/apt/lists/*debian_dists_bookworm_InRelease | head -1)
  sha=$(awk '/^SHA256:/{f=1;next} /^[A-Za-z]/{f=0} f && $3=="main/i18n/Translation-en.xz"{print $1}' "$inrel")
  /usr/lib/apt/apt-helper download-file http://deb.debian.org/debian/dists/bookworm/main/i18n/Translation-en.xz \
    "$WORK/Translation-en.xz" "SHA256:$sha"
}
corpora() { $PY data_debian.py && $PY data_wordnet.py && $PY build_tokenizer.py && $PY sgns.py 128 3; }
datasets() {
  $PY data_qa.py && $PY qa_lexicon.py && $PY data_retrieval.py
  $PY data_classify.py && $PY data_essay.py && $PY data_sts.py
}
stage translation "$WORK/Translation-en.xz" translation
stage tokenizer "$WORK/emb_128.npy" corpora         # Debian/WordNet corpora, WordPiece tokenizer, skip-gram embeddings
stage datasets "$WORK/sts.pkl" datasets             # QA windows, lexicon, retrieval pairs + BM25, zoo task data
if [ $DATA_ONLY = 1 ]; then step "datasets done"; exit 0; fi

# qa-demo: one schedule of QA_STEPS steps, run as two stages of about two hours (the second resumes the checkpoint).
QA_STEPS=${QA_STEPS:-24000}
qa_train_1() { QA_STEPS=$QA_STEPS QA_STOP_AT=$((QA_STEPS / 2)) EMB_INIT="$WORK/emb_128.npy" $PY train_qa.py qa-demo && touch "$WORK/qa/qa-demo/stage1.done"; }
qa_train_2() { QA_STEPS=$QA_STEPS EMB_INIT="$WORK/emb_128.npy" $PY train_qa.py qa-demo; }
stage qa-train-1 "$WORK/qa/qa-demo/stage1.done" qa_train_1
stage qa-train-2 "$WORK/qa/qa-demo/model.onnx" qa_train_2

# rerank-demo starts from the QA reader's weights; retrieve-demo from the skip-gram embeddings.
rerank() { INIT="$WORK/qa/qa-demo/weights.pt" STEPS="${RERANK_STEPS:-6000}" $PY train_rank.py rerank rerank-demo; }
retrieve() { INIT="$WORK/emb_128.npy" STEPS="${RETRIEVE_STEPS:-3000}" $PY train_rank.py retrieve retrieve-demo; }
stage rerank "$WORK/ret/rerank-demo/model.onnx" rerank
stage retrieve "$WORK/ret/retrieve-demo/model.onnx" retrieve

# The shared MLM encoder and the zoo models fine-tuned from it.
pretrain() { $PY pretrain.py "${PRETRAIN_STEPS:-1400}" && touch "$WORK/pretrained.done"; }
ft() { $PY finetune.py "$@" > "$WORK/ft-$1.log" 2>&1 || { tail -20 "$WORK/ft-$1.log"; return 1; }; }
sts() { CONTRASTIVE_STEPS="${STS_CONTRASTIVE_STEPS:-1000}" ft sts-demo "${STS_STEPS:-500}"; }
stage pretrain "$WORK/pretrained.done" pretrain
stage sts-demo "$WORK/out/sts-demo/model.onnx" sts
# An STS cross-encoder (finetune.py sts-cross-demo) was tried and not shipped: STS-B dev Spearman 0.27 (train 0.92).
stage classify-demo "$WORK/out/classify-demo/model.onnx" ft classify-demo "${CLASSIFY_STEPS:-1200}"
stage essay-demo "$WORK/out/essay-demo/model.onnx" ft essay-demo "${ESSAY_STEPS:-1000}"
stage essay-demo-bands "$WORK/out/essay-demo-bands/model.onnx" ft essay-demo-bands "${ESSAY_STEPS:-1000}"

# int8 (static activation scales, batch-invariant), evaluation the way the gateway runs the models, packaging.
stage int8 "$WORK/int8.json" $PY quantize.py qa-demo rerank-demo retrieve-demo
evaluate() { $PY evaluate_all.py && touch "$WORK/eval.done"; }
stage evaluate "$WORK/eval.done" evaluate
step "validate with onnxruntime-node and package"
$PY package.py
# The lexical channel (a hashed TF-IDF vector beside the encoder's in one sentence_embedding; the retriever's weight
# chosen on QED/NQ dev, sts-demo's on STS-B dev), then the retriever's hybrid keyword weight, chosen on QED/NQ dev, into
# its zips' gateway.json and cards (3.0.0).
$PY lexical.py --version 3.0.0 retrieve-demo retrieve-demo-int8 sts-demo
$PY calibrate_hybrid.py --version 3.0.0 retrieve-demo retrieve-demo-int8
$PY write_readme.py
step "done; stage wall times in $TIMES"
