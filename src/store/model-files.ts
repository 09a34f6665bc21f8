/**
 * The files of a model folder that the gateway reads, in one place: readManifest reads them and
 * publish-model packs them, so a zip made by publish-model holds everything the gateway would have read
 * from the folder it was made from.
 */

/** Where the ONNX graph is looked for when gateway.json names none; the first found wins. */
export const ONNX_CANDIDATES = ['model.onnx', 'onnx/model.onnx', 'onnx/model_quantized.onnx'] as const;

/**
 * Files packed into a model zip: what the gateway reads (gateway.json, the Hugging Face and
 * sentence-transformers configs, each sentence-transformers module's config.json, the tokenizer, the graph
 * and its external data) and what documents the model (card, licence). Weights for other runtimes stay out.
 */
export const PACKED_FILES: readonly RegExp[] = [
  /^gateway\.json$/,
  /^config\.json$/,
  /^tokenizer\.json$/,
  /^tokenizer_config\.json$/,
  /^special_tokens_map\.json$/,
  /^vocab\.txt$/,
  /^modules\.json$/,
  /^sentence_bert_config\.json$/,
  /^config_sentence_transformers\.json$/,
  /^\d+_[A-Za-z]+\/config\.json$/,
  /^(onnx\/)?[^/]+\.onnx(_data)?$/,
  /^(onnx\/)?[^/]+\.onnx\.data$/,
  /^(MODEL_CARD|README)\.md$/i,
  /^LICEN[CS]E(\.[a-z]+)?$/i,
];
