// The gateway's web form. Plain ES module, no build step, nothing fetched from outside this origin.
// Every URL is relative, so the same files work when the gateway serves them at `/` and behind nginx.
// User and model text is only ever written with textContent, never as HTML.
/* global location, history */

const TASK_NAMES = {
  'question-answering': 'Question answering',
  'sentence-similarity': 'Sentence similarity',
  'essay-scoring': 'Essay scoring',
  'text-classification': 'Text classification',
  documents: 'Ask your documents',
};

/** The model task a form task lists: questions over documents are read by a QA model. */
const MODEL_TASK = { documents: 'question-answering' };

/** Prefilled inputs that give a sensible answer with the bundled demo models. */
const EXAMPLES = {
  'question-answering': {
    'qa-question': 'Who was the first woman to win a Nobel Prize?',
    'qa-context':
      'Marie Curie was a Polish and naturalised French physicist and chemist who conducted pioneering research on ' +
      'radioactivity. She was the first woman to win a Nobel Prize, and the only person to win Nobel Prizes in two ' +
      'scientific fields, physics in 1903 and chemistry in 1911.',
  },
  'sentence-similarity': {
    'sts-1': 'A woman is slicing an onion.',
    'sts-2': 'A woman is cutting an onion.',
  },
  'essay-scoring': {
    essay:
      'Public libraries still matter in a world where most information is online. First, a library gives ' +
      'everyone the same access to books, computers and quiet space, whatever they can afford at home. ' +
      'Second, librarians help people judge sources, which matters more now that anyone can publish anything. ' +
      'Finally, libraries host classes, clubs and events that bring neighbours together. For these reasons, ' +
      'towns should keep funding their libraries rather than closing them to save money.',
  },
  'text-classification': {
    'classify-text': 'arcade game with levels, monsters and a high score table',
  },
  documents: {
    'doc-collection': 'my-docs',
    'doc-question': 'Who maintains nginx?',
  },
};

/** How each task is sent and shown. */
const TASKS = {
  'question-answering': {
    route: 'v1/qa',
    body: (v) => ({ question: v['qa-question'], context: v['qa-context'], top_k: 3 }),
    render: renderQa,
  },
  'sentence-similarity': {
    route: 'v1/similarity',
    body: (v) => ({ sentence_1: v['sts-1'], sentence_2: v['sts-2'] }),
    render: renderSimilarity,
  },
  'essay-scoring': {
    route: 'v1/essays/score',
    body: (v) => ({ essay: v.essay }),
    render: renderEssay,
  },
  'text-classification': {
    route: 'v1/classify',
    body: (v) => ({ inputs: v['classify-text'] }),
    render: renderClassification,
  },
  documents: {
    route: (v) => `v1/collections/${encodeURIComponent(v['doc-collection'])}/qa`,
    body: (v) => ({ question: v['doc-question'], top_k: 3, collection: v['doc-collection'] }),
    render: renderDocumentAnswers,
  },
};

const REQUEST_TIMEOUT_MS = 60_000;
const MODELS_POLL_MS = 3_000;

const $ = (id) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el;
};

const form = $('main-form');
const taskSelect = /** @type {HTMLSelectElement} */ ($('task'));
const modelSelect = /** @type {HTMLSelectElement} */ ($('model'));
const submitButton = /** @type {HTMLButtonElement} */ ($('submit'));
const exampleButton = /** @type {HTMLButtonElement} */ ($('example'));
const modelInfo = $('model-info');
const modelsStatus = $('models-status');
const errorBox = $('error');
const resultSection = $('result');
const resultBody = $('result-body');
const resultMeta = $('result-meta');

/** @type {Array<Record<string, any>>} */
let models = [];
let retryTimer = 0;
let inFlight = false;
let pollTimer = 0;

// ---------- small DOM helpers (text only) ----------

function el(tag, opts = {}, children = []) {
  const node = document.createElement(tag);
  if (opts.className) node.className = opts.className;
  if (opts.text !== undefined) node.textContent = String(opts.text);
  for (const [k, v] of Object.entries(opts.attrs ?? {})) node.setAttribute(k, String(v));
  for (const c of children) if (c) node.append(c);
  return node;
}

const pct = (x) => `${(Math.max(0, Math.min(1, x)) * 100).toFixed(1)} %`;
/** Two significant digits: QA span scores are small probabilities over every possible span. */
const sig = (x) => (typeof x === 'number' && Number.isFinite(x) ? Number(x.toPrecision(2)).toString() : '—');
const fmt = (x, digits = 3) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits).replace(/\.?0+$/, '') || '0' : '—');

/** A horizontal bar; `fraction` in [0, 1]; the width is set through CSSOM (allowed by a strict CSP). */
function bar(fraction, tickFraction) {
  const track = el('div', { className: 'track', attrs: { 'aria-hidden': 'true' } });
  const fill = el('div', { className: 'fill' });
  fill.style.width = `${Math.max(0, Math.min(1, fraction)) * 100}%`;
  track.append(fill);
  if (typeof tickFraction === 'number') {
    const tick = el('div', { className: 'tick' });
    tick.style.left = `calc(${Math.max(0, Math.min(1, tickFraction)) * 100}% - 1px)`;
    track.append(tick);
  }
  return track;
}

// ---------- models ----------

function modelsOf(task) {
  const modelTask = MODEL_TASK[task] ?? task;
  return models.filter((m) => m.task === modelTask);
}

function isReady(m) {
  return m.state === undefined || m.state === 'ready';
}

function fillModelSelect() {
  const task = taskSelect.value;
  const previous = modelSelect.value;
  const ready = modelsOf(task).filter(isReady);
  // The task's default first, then by name.
  ready.sort((a, b) => Number(Boolean(b.default)) - Number(Boolean(a.default)) || String(a.name).localeCompare(String(b.name)));
  modelSelect.replaceChildren();
  const group = el('optgroup', { attrs: { label: TASK_NAMES[task] ?? task } });
  for (const m of ready) {
    group.append(el('option', { text: m.default ? `${m.name} (default)` : m.name, attrs: { value: m.name } }));
  }
  if (ready.length > 0) {
    modelSelect.append(group);
    if (ready.some((m) => m.name === previous)) modelSelect.value = previous;
  } else {
    const waiting = modelsOf(task).length > 0;
    modelSelect.append(el('option', { text: waiting ? 'no model ready yet' : 'no model for this task', attrs: { value: '' } }));
  }
  modelSelect.disabled = ready.length === 0;
  submitButton.disabled = ready.length === 0 || retryTimer !== 0 || inFlight;
  describeModel();
}

function describeModel() {
  const m = models.find((x) => x.name === modelSelect.value);
  if (!m) {
    modelInfo.textContent = '';
    return;
  }
  const parts = [];
  if (m.version) parts.push(`version ${m.version}`);
  const scale = m.scale ?? m.score;
  if (m.task === 'essay-scoring' && scale && typeof scale.min === 'number') parts.push(`rubric ${scale.min}–${scale.max}`);
  if (Array.isArray(m.labels) && m.labels.length > 0 && m.task === 'text-classification') parts.push(`${m.labels.length} labels`);
  if (typeof m.threshold === 'number') parts.push(`similar at ≥ ${m.threshold}`);
  if (m.description) parts.push(m.description);
  modelInfo.textContent = parts.join(' · ');
}

function describeModelStates() {
  const waiting = models.filter((m) => !isReady(m) && m.state !== 'failed');
  const failed = models.filter((m) => m.state === 'failed');
  const msgs = [];
  if (waiting.length > 0) msgs.push(`Still loading: ${waiting.map((m) => `${m.name} (${m.state})`).join(', ')}.`);
  if (failed.length > 0) msgs.push(`Not available: ${failed.map((m) => m.name).join(', ')}.`);
  modelsStatus.textContent = msgs.join(' ');
  return waiting.length > 0;
}

async function loadModels() {
  clearTimeout(pollTimer);
  let again = false;
  try {
    const res = await fetch('v1/models', { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(10_000) });
    const body = await readJson(res);
    if (!res.ok) throw new Error(errorMessage(res, body));
    const list = Array.isArray(body) ? body : (body?.models ?? body?.data ?? []);
    models = Array.isArray(list) ? list.filter((m) => m && typeof m.name === 'string') : [];
    again = describeModelStates();
  } catch (err) {
    modelsStatus.textContent = `Could not list the models: ${err instanceof Error ? err.message : String(err)}. Trying again…`;
    again = true;
  }
  for (const opt of taskSelect.options) {
    const n = modelsOf(opt.value).filter(isReady).length;
    opt.textContent = n > 0 ? TASK_NAMES[opt.value] : `${TASK_NAMES[opt.value]} (no model ready)`;
  }
  fillModelSelect();
  if (again) pollTimer = window.setTimeout(loadModels, MODELS_POLL_MS);
}

// ---------- task panels and examples ----------

function showTask(task) {
  for (const panel of document.querySelectorAll('fieldset.panel')) {
    const on = panel.getAttribute('data-task') === task;
    panel.hidden = !on;
    // Hidden fields must not block or join the submit.
    for (const field of panel.querySelectorAll('input, textarea')) field.disabled = !on;
  }
  fillModelSelect();
  if (location.hash.slice(1) !== task) history.replaceState(null, '', `#${task}`);
}

function putExample(task, onlyEmpty) {
  for (const [id, value] of Object.entries(EXAMPLES[task] ?? {})) {
    const field = /** @type {HTMLInputElement | HTMLTextAreaElement} */ ($(id));
    if (!onlyEmpty || field.value === '') field.value = value;
  }
}

function values(task) {
  const out = {};
  for (const id of Object.keys(EXAMPLES[task] ?? {})) out[id] = /** @type {HTMLInputElement} */ ($(id)).value;
  return out;
}

// ---------- errors ----------

async function readJson(res) {
  const text = await res.text();
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return { error: { message: text.slice(0, 300) } };
  }
}

/** Seconds from a Retry-After header (delta seconds or an HTTP date); 0 when absent. */
function retryAfterSeconds(res) {
  const raw = res.headers.get('retry-after');
  if (!raw) return 0;
  const n = Number(raw);
  if (Number.isFinite(n)) return Math.max(1, Math.ceil(n));
  const at = Date.parse(raw);
  return Number.isFinite(at) ? Math.max(1, Math.ceil((at - Date.now()) / 1000)) : 0;
}

function errorMessage(res, body) {
  const apiMessage = body?.error?.message;
  return typeof apiMessage === 'string' && apiMessage ? apiMessage : `HTTP ${res.status} ${res.statusText}`.trim();
}

function showError(title, detail) {
  errorBox.replaceChildren(el('p', { text: title }), detail ? el('p', { className: 'detail', text: detail }) : '');
  errorBox.hidden = false;
}

function clearError() {
  errorBox.hidden = true;
  errorBox.replaceChildren();
}

/** Busy (429/503): say when to retry and keep the button off until then. */
function busyFor(seconds, status, detail) {
  const what = status === 429 ? 'The gateway is busy: too many requests.' : 'The gateway is busy or not ready yet.';
  let left = Math.max(1, seconds || 2);
  const tick = () => {
    if (left <= 0) {
      window.clearInterval(retryTimer);
      retryTimer = 0;
      submitButton.textContent = 'Run';
      fillModelSelect();
      showError(`${what} You can retry now.`, detail);
      return;
    }
    submitButton.textContent = `Retry in ${left} s`;
    showError(`${what} Busy, retry in ${left} s.`, detail);
    left -= 1;
  };
  window.clearInterval(retryTimer);
  submitButton.disabled = true;
  tick();
  retryTimer = window.setInterval(tick, 1000);
}

// ---------- results ----------

function renderQa(data, sent) {
  const answers = Array.isArray(data.answers) ? data.answers : [];
  const best = answers[0];
  const context = sent.context;
  if (!best || typeof best.answer !== 'string' || best.answer === '' || best.end <= best.start) {
    return [el('p', { className: 'big', text: 'No answer found in the context.' }), el('p', { className: 'hint', text: 'The model judged that the context does not answer this question.' })];
  }
  const fromOffsets = context.slice(best.start, best.end);
  const exact = fromOffsets === best.answer;
  const quote = el('blockquote', { className: 'context', attrs: { 'aria-label': 'Context with the answer highlighted' } });
  if (exact) {
    quote.append(context.slice(0, best.start), el('mark', { text: fromOffsets, attrs: { id: 'qa-answer-mark' } }), context.slice(best.end));
  } else {
    quote.append(context);
  }
  const nodes = [
    el('p', { text: 'Answer', className: 'hint' }),
    el('p', { className: 'big', attrs: { id: 'qa-answer' }, text: best.answer }),
    el('p', { text: `Score ${sig(best.score)} · characters ${best.start}–${best.end}` }),
    quote,
  ];
  if (exact) nodes.push(feedbackControls({ request_id: sent.requestId, question: sent.question, context, answer: { text: best.answer, start: best.start } }, quote, 0, 0));
  if (answers.length > 1) {
    const list = el('ol', { className: 'candidates' });
    for (const a of answers.slice(1)) list.append(el('li', { text: `${a.answer === '' ? '(no answer)' : a.answer} — score ${sig(a.score)}` }));
    nodes.push(el('p', { className: 'hint', text: 'Other candidates' }), list);
  }
  return nodes;
}

function renderSimilarity(data) {
  const score = Number(data.score);
  const threshold = typeof data.threshold === 'number' ? data.threshold : undefined;
  const similar = typeof data.similar === 'boolean' ? data.similar : threshold !== undefined && score >= threshold;
  return [
    el('p', { className: `big ${similar ? 'verdict-yes' : 'verdict-no'}`, attrs: { id: 'sts-verdict' }, text: similar ? 'Similar' : 'Not similar' }),
    el('p', { attrs: { id: 'sts-score' }, text: `Cosine similarity ${fmt(score)}${threshold !== undefined ? ` (similar from ${fmt(threshold)})` : ''}` }),
    bar((score + 1) / 2, threshold !== undefined ? (threshold + 1) / 2 : undefined),
    el('div', { className: 'scale-ends', attrs: { 'aria-hidden': 'true' } }, [el('span', { text: '−1' }), el('span', { text: '0' }), el('span', { text: '1' })]),
  ];
}

function renderEssay(data) {
  const score = Number(data.score);
  const scale = data.scale ?? {};
  const min = typeof scale.min === 'number' ? scale.min : 0;
  const max = typeof scale.max === 'number' ? scale.max : 1;
  const nodes = [
    el('p', { className: 'hint', text: 'Essay score' }),
    el('p', { className: 'big', attrs: { id: 'essay-score' }, text: `${fmt(score, 2)} on a ${min}–${max} scale` }),
    bar(max > min ? (score - min) / (max - min) : 0),
    el('div', { className: 'scale-ends', attrs: { 'aria-hidden': 'true' } }, [el('span', { text: String(min) }), el('span', { text: String(max) })]),
  ];
  if (typeof data.windows === 'number' && data.windows > 1) nodes.push(el('p', { className: 'hint', text: `Long essay: read whole in ${data.windows} windows.` }));
  return nodes;
}

function renderClassification(data) {
  const pred = Array.isArray(data.predictions) ? data.predictions[0] : undefined;
  if (!pred) return [el('p', { text: 'The model returned no prediction.' })];
  const labels = (Array.isArray(pred.labels) && pred.labels.length > 0 ? [...pred.labels] : [{ label: pred.label, score: pred.score }]).sort((a, b) => b.score - a.score);
  const list = el('ul', { className: 'bars', attrs: { 'aria-label': 'Score of each label' } });
  for (const l of labels) {
    list.append(
      el('li', { className: l.label === pred.label ? 'top' : '' }, [
        el('span', { className: 'name', text: l.label }),
        bar(l.score),
        el('span', { className: 'value', text: pct(l.score) }),
      ]),
    );
  }
  return [
    el('p', { className: 'hint', text: 'Predicted label' }),
    el('p', { className: 'big', attrs: { id: 'classify-label' }, text: `${pred.label} (${pct(pred.score)})` }),
    list,
  ];
}

// ---------- feedback ----------

/** [start, end) of the current selection inside `quote`, counted in the quote's own text; null without one. */
function selectionIn(quote) {
  const sel = window.getSelection();
  if (!sel || sel.rangeCount === 0 || sel.isCollapsed) return null;
  const range = sel.getRangeAt(0);
  if (!quote.contains(range.startContainer) || !quote.contains(range.endContainer)) return null;
  const before = document.createRange();
  before.selectNodeContents(quote);
  before.setEnd(range.startContainer, range.startOffset);
  const start = before.toString().length;
  return { start, end: start + range.toString().length };
}

/**
 * "Right" / "Wrong" under an answer. Wrong asks for the right span: the reader selects it in the quoted text,
 * whose first character is `source` index `quoteStart` after `prefix` added characters (an ellipsis).
 */
function feedbackControls(target, quote, quoteStart, prefix) {
  const box = el('div', { className: 'feedback' });
  const status = el('p', { className: 'hint fb-status', attrs: { role: 'status' } });
  const right = el('button', { text: 'Right', className: 'secondary fb-right', attrs: { type: 'button' } });
  const wrong = el('button', { text: 'Wrong', className: 'secondary fb-wrong', attrs: { type: 'button' } });
  const send = el('button', { text: 'Send correction', className: 'fb-send', attrs: { type: 'button', hidden: '' } });
  const skip = el('button', { text: 'No right answer in the text', className: 'secondary fb-none', attrs: { type: 'button', hidden: '' } });
  const post = async (body, done) => {
    for (const b of [right, wrong, send, skip]) b.disabled = true;
    try {
      const res = await fetch('v1/feedback', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...target, ...body }) });
      const data = await readJson(res);
      if (!res.ok) throw new Error(errorMessage(res, data));
      status.textContent = `${done} Saved as ${data.id}.`;
      status.dataset.feedbackId = data.id;
    } catch (err) {
      status.textContent = `Could not save the feedback: ${err instanceof Error ? err.message : String(err)}`;
      for (const b of [right, wrong, send, skip]) b.disabled = false;
    }
  };
  right.addEventListener('click', () => post({ correct: true }, 'Thank you: marked right.'));
  wrong.addEventListener('click', () => {
    send.hidden = false;
    skip.hidden = false;
    status.textContent = 'Select the right answer in the text above, then press “Send correction”.';
  });
  send.addEventListener('click', () => {
    const span = selectionIn(quote);
    if (!span || span.end <= span.start) {
      status.textContent = 'First select the right answer in the text above.';
      return;
    }
    const start = quoteStart + span.start - prefix;
    const end = quoteStart + span.end - prefix;
    post({ correct: false, correction: { start, end } }, `Thank you: corrected to “${quote.textContent.slice(span.start, span.end)}”.`);
  });
  skip.addEventListener('click', () => post({ correct: false }, 'Thank you: marked wrong.'));
  box.append(el('span', { className: 'hint', text: 'Is this answer right?' }), right, wrong, send, skip, status);
  return box;
}

/** One answer shown inside its document: a window of the text around it, the answer marked at its offsets. */
function answerInDocument(a, text, i, sent) {
  const start = Math.max(0, a.start - 300);
  const end = Math.min(text.length, a.end + 300);
  const exact = text.slice(a.start, a.end) === a.answer;
  const quote = el('blockquote', { className: 'context', attrs: { 'aria-label': `Answer ${i + 1} in document ${a.document_id}` } });
  if (exact) quote.append(start > 0 ? '…' : '', text.slice(start, a.start), el('mark', { text: a.answer, attrs: { 'data-answer': String(i) } }), text.slice(a.end, end), end < text.length ? '…' : '');
  else quote.append(text.slice(start, end));
  const item = el('li', { className: 'doc-answer' }, [
    el('p', { className: 'big', text: a.answer }),
    el('p', { className: 'hint', text: `document ${a.document_id} · characters ${a.start}–${a.end} · score ${sig(a.score)}` }),
    quote,
  ]);
  if (exact) {
    const target = { request_id: sent.requestId, question: sent.question, collection: sent.collection, document_id: a.document_id, answer: { text: a.answer, start: a.start } };
    item.append(feedbackControls(target, quote, start, start > 0 ? 1 : 0));
  }
  return item;
}

async function renderDocumentAnswers(data, sent) {
  const answers = (Array.isArray(data.answers) ? data.answers : []).filter((a) => typeof a.answer === 'string' && a.answer !== '' && a.document_id);
  if (answers.length === 0) return [el('p', { className: 'big', text: 'No answer found in the documents.' }), el('p', { className: 'hint', text: `${data.read ?? 0} chunks were read.` })];
  const texts = new Map();
  for (const id of new Set(answers.map((a) => a.document_id))) {
    const res = await fetch(`v1/collections/${encodeURIComponent(sent.collection)}/documents/${encodeURIComponent(id)}`, { headers: { accept: 'application/json' } });
    const doc = await readJson(res);
    texts.set(id, res.ok && typeof doc?.text === 'string' ? doc.text : '');
  }
  const list = el('ol', { className: 'doc-answers', attrs: { id: 'doc-answers' } });
  answers.forEach((a, i) => list.append(answerInDocument(a, texts.get(a.document_id) ?? '', i, sent)));
  return [el('p', { className: 'hint', text: `Answers from ${texts.size} document${texts.size === 1 ? '' : 's'} (${data.read} chunks read)` }), list];
}

/** Uploads the chosen files to the collection, creating it on first use. */
async function uploadDocuments() {
  const name = /** @type {HTMLInputElement} */ ($('doc-collection')).value.trim();
  const files = /** @type {HTMLInputElement} */ ($('doc-files')).files;
  const status = $('doc-upload-status');
  if (!name || !files || files.length === 0) {
    status.textContent = 'Choose a collection name and at least one file.';
    return;
  }
  status.textContent = 'Uploading…';
  try {
    const exists = await fetch(`v1/collections/${encodeURIComponent(name)}`, { headers: { accept: 'application/json' } });
    if (exists.status === 404) {
      const made = await fetch('v1/collections', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name }) });
      if (!made.ok) throw new Error(errorMessage(made, await readJson(made)));
    }
    const formData = new FormData();
    for (const f of files) formData.append('file', f, f.name);
    const res = await fetch(`v1/collections/${encodeURIComponent(name)}/documents`, { method: 'POST', body: formData });
    const body = await readJson(res);
    if (!res.ok) throw new Error(errorMessage(res, body));
    status.textContent = `Uploaded ${body.ingested} document${body.ingested === 1 ? '' : 's'} (${body.chunks} chunks) to ${name}.`;
  } catch (err) {
    status.textContent = `Upload failed: ${err instanceof Error ? err.message : String(err)}`;
  }
}

// ---------- submit ----------

async function submit(event) {
  event.preventDefault();
  if (submitButton.disabled) return;
  const task = taskSelect.value;
  const spec = TASKS[task];
  const v = values(task);
  const empty = Object.entries(v).find(([, value]) => value.trim() === '');
  if (empty) {
    const field = $(empty[0]);
    showError(`Please fill in “${document.querySelector(`label[for="${empty[0]}"]`)?.firstChild?.textContent?.trim() ?? empty[0]}”.`);
    field.focus();
    return;
  }
  clearError();
  const sent = spec.body(v);
  const { collection: _collection, ...payload } = sent;
  const body = { ...payload, model: modelSelect.value || undefined };
  submitButton.disabled = true;
  inFlight = true;
  resultSection.setAttribute('aria-busy', 'true');
  resultMeta.textContent = 'Working…';
  let res;
  try {
    res = await fetch(typeof spec.route === 'function' ? spec.route(v) : spec.route, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const data = await readJson(res);
    if (res.status === 429 || res.status === 503) {
      resultMeta.textContent = '';
      busyFor(retryAfterSeconds(res), res.status, errorMessage(res, data));
      if (res.status === 503) loadModels();
      return;
    }
    if (!res.ok) {
      resultMeta.textContent = '';
      showError(`The request was refused (${res.status}${data?.error?.code ? ` ${data.error.code}` : ''}).`, errorMessage(res, data));
      return;
    }
    resultBody.replaceChildren(...(await spec.render(data ?? {}, { ...sent, requestId: res.headers.get('x-request-id') ?? undefined })));
    resultSection.dataset.task = task;
    const meta = [`model ${data?.model ?? body.model ?? 'default'}`];
    const total = res.headers.get('x-total-time');
    if (total) meta.push(`${total} ms`);
    const rid = res.headers.get('x-request-id');
    if (rid) meta.push(`request id ${rid}`);
    resultMeta.textContent = meta.join(' · ');
  } catch (err) {
    resultMeta.textContent = '';
    const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
    showError(timedOut ? `No answer within ${REQUEST_TIMEOUT_MS / 1000} s.` : 'Could not reach the gateway.', err instanceof Error ? err.message : String(err));
  } finally {
    inFlight = false;
    resultSection.removeAttribute('aria-busy');
    if (retryTimer === 0) submitButton.disabled = modelSelect.disabled;
  }
}

// ---------- wiring ----------

taskSelect.addEventListener('change', () => {
  clearError();
  showTask(taskSelect.value);
});
modelSelect.addEventListener('change', describeModel);
exampleButton.addEventListener('click', () => putExample(taskSelect.value, false));
$('doc-upload').addEventListener('click', uploadDocuments);
form.addEventListener('submit', submit);

for (const task of Object.keys(EXAMPLES)) putExample(task, true);
const fromHash = location.hash.slice(1);
if (fromHash in TASKS) taskSelect.value = fromHash;
showTask(taskSelect.value);
loadModels();
