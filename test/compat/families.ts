/**
 * The model families users bring, as folders laid out like their Hugging Face / Optimum / sentence-transformers
 * exports: the REAL tokenizer files of ../shared/data/real-models, the config files those exports have (and no
 * gateway.json where the export tells everything), and either the real ONNX export or a stand-in graph with
 * the exact Optimum signature of the family (test/fixtures/stand-in-onnx.ts). Only the weights are not real.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildStandIn, type StandInOptions } from '../fixtures/stand-in-onnx.ts';
import { DISTILBERT_CLASSIFIER, realTokenizer, XLMR_CROSS_ENCODER_ZIP } from '../helpers/real-models.ts';
import { unzipTo } from '../helpers/unzip.ts';
import type { Task } from '../../src/tasks/catalog.ts';

type TokenizerName = Parameters<typeof realTokenizer>[0];

export interface Family {
  id: string;
  task: Task;
  /** What it stands for, for the table in the closing note. */
  like: string;
  /** tokenizer_config.json "tokenizer_class", so transformers.js loads the same tokenizer. */
  tokenizerClass: string;
  /** The graph reads token types (false: DistilBERT, RoBERTa-family fed zeros). */
  feedsTypeIds: boolean;
  /** Writes the export into `dir`. */
  write(dir: string): Promise<void>;
  /** The window the model's own library uses. */
  maxLength: number;
}

function vocabSize(tokenizerFile: string): number {
  const t = JSON.parse(readFileSync(tokenizerFile, 'utf8')) as { model: { vocab: Record<string, number> | unknown[] }; added_tokens: { id: number }[] };
  const v = t.model.vocab;
  const max = Array.isArray(v) ? v.length - 1 : Math.max(...Object.values(v));
  return Math.max(max, ...t.added_tokens.map((a) => a.id)) + 1;
}

const json = (dir: string, file: string, value: unknown) => {
  mkdirSync(join(dir, file, '..'), { recursive: true });
  writeFileSync(join(dir, file), JSON.stringify(value, null, 2));
};

const SMALL = { hidden: 32, layers: 1, heads: 2, intermediate: 64 } as const;

/** An Optimum-style export: tokenizer files, config.json, model.onnx (stand-in), optional sentence-transformers files. */
function standIn(o: {
  tokenizer: TokenizerName;
  tokenizerClass: string;
  modelMaxLength: number;
  config: Record<string, unknown>;
  graph: Omit<StandInOptions, 'vocabSize' | keyof typeof SMALL>;
  sentenceTransformers?: { pooling: 'mean' | 'cls'; normalize: boolean; maxSeqLength: number };
  seed: number;
}): (dir: string) => Promise<void> {
  return async (dir) => {
    mkdirSync(dir, { recursive: true });
    const tok = realTokenizer(o.tokenizer);
    copyFileSync(tok, join(dir, 'tokenizer.json'));
    json(dir, 'tokenizer_config.json', { tokenizer_class: o.tokenizerClass, model_max_length: o.modelMaxLength });
    const vocab = vocabSize(tok);
    json(dir, 'config.json', { ...o.config, vocab_size: vocab, hidden_size: SMALL.hidden, num_hidden_layers: SMALL.layers, num_attention_heads: SMALL.heads });
    writeFileSync(join(dir, 'model.onnx'), buildStandIn({ ...SMALL, ...o.graph, vocabSize: vocab, seed: o.seed }));
    const st = o.sentenceTransformers;
    if (st) {
      json(dir, 'modules.json', [
        { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
        { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
        ...(st.normalize ? [{ idx: 2, name: '2', path: '2_Normalize', type: 'sentence_transformers.models.Normalize' }] : []),
      ]);
      json(dir, '1_Pooling/config.json', {
        word_embedding_dimension: SMALL.hidden,
        pooling_mode_cls_token: st.pooling === 'cls',
        pooling_mode_mean_tokens: st.pooling === 'mean',
        pooling_mode_max_tokens: false,
        pooling_mode_mean_sqrt_len_tokens: false,
      });
      json(dir, 'sentence_bert_config.json', { max_seq_length: st.maxSeqLength, do_lower_case: false });
    }
  };
}

const bertConfig = (arch: string) => ({ model_type: 'bert', architectures: [arch], max_position_embeddings: 512, type_vocab_size: 2, pad_token_id: 0 });
const QA: StandInOptions['head'] = { kind: 'qa' };

export const FAMILIES: Family[] = [
  {
    id: 'bert-cased-qa',
    like: 'bert-base-cased SQuAD fine-tunes',
    task: 'question-answering',
    tokenizerClass: 'BertTokenizer',
    feedsTypeIds: true,
    maxLength: 512,
    write: standIn({ tokenizer: 'bert-base-cased', tokenizerClass: 'BertTokenizer', modelMaxLength: 512, config: bertConfig('BertForQuestionAnswering'), graph: { maxPositions: 512, typeVocabSize: 2, head: QA }, seed: 11 }),
  },
  {
    id: 'bert-uncased-qa',
    like: 'bert-base-uncased SQuAD fine-tunes',
    task: 'question-answering',
    tokenizerClass: 'BertTokenizer',
    feedsTypeIds: true,
    maxLength: 512,
    write: standIn({ tokenizer: 'bert-base-uncased', tokenizerClass: 'BertTokenizer', modelMaxLength: 512, config: bertConfig('BertForQuestionAnswering'), graph: { maxPositions: 512, typeVocabSize: 2, head: QA }, seed: 12 }),
  },
  {
    id: 'distilbert-qa',
    like: 'distilbert-base-uncased-distilled-squad (no token_type_ids input)',
    task: 'question-answering',
    tokenizerClass: 'DistilBertTokenizer',
    feedsTypeIds: false,
    maxLength: 512,
    write: standIn({
      tokenizer: 'bert-base-uncased',
      tokenizerClass: 'DistilBertTokenizer',
      modelMaxLength: 512,
      config: { model_type: 'distilbert', architectures: ['DistilBertForQuestionAnswering'], max_position_embeddings: 512, pad_token_id: 0 },
      graph: { maxPositions: 512, typeVocabSize: 0, head: QA },
      seed: 13,
    }),
  },
  {
    id: 'roberta-qa',
    like: 'deepset/roberta-base-squad2 (byte-level BPE, type_vocab_size 1, positions offset by the pad id)',
    task: 'question-answering',
    tokenizerClass: 'RobertaTokenizer',
    feedsTypeIds: false,
    maxLength: 512,
    write: standIn({
      tokenizer: 'roberta-base',
      tokenizerClass: 'RobertaTokenizer',
      modelMaxLength: 512,
      config: { model_type: 'roberta', architectures: ['RobertaForQuestionAnswering'], max_position_embeddings: 514, type_vocab_size: 1, pad_token_id: 1 },
      graph: { maxPositions: 514, typeVocabSize: 1, padOffsetPositions: 1, head: QA },
      seed: 14,
    }),
  },
  {
    id: 'mbert-qa',
    like: 'bert-base-multilingual-uncased QA (Korean, Chinese)',
    task: 'question-answering',
    tokenizerClass: 'BertTokenizer',
    feedsTypeIds: true,
    maxLength: 512,
    write: standIn({ tokenizer: 'bert-base-multilingual-uncased', tokenizerClass: 'BertTokenizer', modelMaxLength: 512, config: bertConfig('BertForQuestionAnswering'), graph: { maxPositions: 512, typeVocabSize: 2, head: QA }, seed: 15 }),
  },
  {
    id: 'minilm-mean',
    like: 'sentence-transformers/all-MiniLM-L6-v2 (mean pooling, Normalize, max_seq_length 256)',
    task: 'sentence-similarity',
    tokenizerClass: 'BertTokenizer',
    feedsTypeIds: true,
    maxLength: 256,
    write: standIn({
      tokenizer: 'all-minilm-l6-v2',
      tokenizerClass: 'BertTokenizer',
      modelMaxLength: 512,
      config: bertConfig('BertModel'),
      graph: { maxPositions: 512, typeVocabSize: 2, head: { kind: 'encoder' } },
      sentenceTransformers: { pooling: 'mean', normalize: true, maxSeqLength: 256 },
      seed: 16,
    }),
  },
  {
    id: 'bge-cls',
    like: 'BAAI/bge-small-en (CLS pooling, Normalize)',
    task: 'sentence-similarity',
    tokenizerClass: 'BertTokenizer',
    feedsTypeIds: true,
    maxLength: 512,
    write: standIn({
      tokenizer: 'bert-base-uncased',
      tokenizerClass: 'BertTokenizer',
      modelMaxLength: 512,
      config: bertConfig('BertModel'),
      graph: { maxPositions: 512, typeVocabSize: 2, head: { kind: 'encoder' } },
      sentenceTransformers: { pooling: 'cls', normalize: true, maxSeqLength: 512 },
      seed: 17,
    }),
  },
  {
    id: 'xlmr-cross-encoder',
    like: "ml-commons' TinyXLMRoberta cross-encoder (the REAL export: model.onnx + tokenizer.json, no config.json)",
    task: 'text-ranking',
    tokenizerClass: 'XLMRobertaTokenizer',
    feedsTypeIds: false,
    maxLength: 62,
    write: async (dir) => {
      await unzipTo(XLMR_CROSS_ENCODER_ZIP, dir);
      // The export cannot tell its task or window: that is all gateway.json says.
      json(dir, 'gateway.json', { task: 'text-ranking', max_length: 62 });
    },
  },
  {
    id: 'distilbert-classifier',
    like: "Optimum's tiny DistilBertForSequenceClassification (the REAL export, no gateway.json)",
    task: 'text-classification',
    tokenizerClass: 'DistilBertTokenizer',
    feedsTypeIds: false,
    maxLength: 512,
    write: async (dir) => {
      mkdirSync(dir, { recursive: true });
      copyFileSync(join(DISTILBERT_CLASSIFIER, 'model.onnx'), join(dir, 'model.onnx'));
      copyFileSync(join(DISTILBERT_CLASSIFIER, 'config.json'), join(dir, 'config.json'));
      copyFileSync(realTokenizer('bert-base-uncased'), join(dir, 'tokenizer.json'));
    },
  },
];

/** Texts for token parity: accents, CJK, Korean, emoji with ZWJ, punctuation, numbers, odd whitespace, long words. */
export const PARITY_TEXTS = [
  'Who maintains the nginx package?',
  'The quick brown fox jumps over the lazy dog.',
  'Déjà vu: the café’s naïve façade!',
  'naïve coöperation, résumé and jalapeño',
  'e\u0301le\u0300ve (decomposed accents)',
  'Straße, Ærøskøbing, İstanbul, Łódź',
  '東京は日本の首都です。',
  '北京是中华人民共和国的首都。',
  '대한민국의 수도는 서울이다.',
  'ありがとうございます、カタカナとひらがな',
  'emoji 🙂 and a family 👩‍👩‍👧 with skin tone 👍🏽',
  'Flags 🇫🇷🇩🇪 and math 𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
  'Prices: $1,000.50, 3.14159, 1e-9 and 100%',
  'hyphen-ated, under_scored, CamelCaseWords and ALLCAPS',
  'antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis',
  'tabs\tand  double  spaces\nand new lines',
  'quotes "double" and \'single\' and «guillemets»',
  'URLs like https://example.com/a?b=c&d=e#f',
  'C++, C#, F# and .NET; 2 + 2 = 4 ≠ 5',
  'Ὀδυσσεύς and Привет, мир and مرحبا بالعالم',
  'zero\u200bwidth and non\u00a0breaking spaces',
  '   leading and trailing spaces   ',
];
