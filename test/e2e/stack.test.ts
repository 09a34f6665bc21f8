/**
 * The deployment end to end, as in docker compose but with local processes: Debian's nginx (the shipped
 * template) in front of two real gateway processes (`node --import tsx src/server.ts`, the Dockerfile's
 * command) serving the bundled demo models, driven by headless Chromium.
 *   - the web form, for each of the four tasks, shows what the API answers (screenshots in test-output/)
 *   - Swagger UI through nginx: "Try it out" on GET /v1/models returns 200
 *   - one replica killed (SIGKILL, by PID) during 200 API requests through nginx: 0 failures
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { startGateway, type GatewayProcess } from '../helpers/gateway-process.ts';
import { TEST_OUTPUT, launchChromium, postJson, request, startNginx, type NginxHandle } from '../deploy/harness.ts';

const BOOT_MS = 180_000;

interface QaAnswer { answer: string; score: number; start: number; end: number }

describe('nginx + two gateway replicas + the web form in Chromium', () => {
  const gateways: GatewayProcess[] = [];
  let nginx: NginxHandle;
  let browser: Browser;
  let page: Page;
  const pageProblems: string[] = [];

  beforeAll(async () => {
    mkdirSync(TEST_OUTPUT, { recursive: true });
    // Behind nginx: trust its X-Forwarded-For. The second replica reuses the first one's unpacked models.
    // Both replicas on one collections file: SQLite's locking serves several processes of one machine
    // (several machines need collections.store postgres).
    const env: Record<string, string> = { GATEWAY_SERVER__TRUST_PROXY: 'true', GATEWAY_COLLECTIONS__DIR: mkdtempSync(path.join(tmpdir(), 'e2e-collections-')) };
    // For trying parts of this file against another model list (the default is the bundled demo models).
    if (process.env.E2E_GATEWAY_CONFIG) env.GATEWAY_CONFIG = process.env.E2E_GATEWAY_CONFIG;
    const first = await startGateway(env);
    gateways.push(first);
    await first.waitReady(BOOT_MS);
    const second = await startGateway({ ...env, GATEWAY_STORE__DIR: first.storeDir });
    gateways.push(second);
    await second.waitReady(BOOT_MS);
    nginx = await startNginx(gateways.map((g) => `127.0.0.1:${g.port}`), { RATE: '10000r/s', BURST: '10000' });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1100, height: 1000 } });
    page.on('pageerror', (e) => pageProblems.push(e.message));
    page.on('request', (r) => {
      if (!r.url().startsWith(nginx.url) && !r.url().startsWith('data:')) pageProblems.push(`off-origin request: ${r.url()}`);
    });
  }, BOOT_MS * 2 + 30_000);

  afterAll(async () => {
    await browser?.close();
    await nginx?.stop();
    await Promise.all(gateways.map((g) => g.stop('SIGKILL')));
  });

  /** Opens the form on a task, runs its prefilled example, waits for the result, screenshots it. */
  async function runExample(task: string, waitFor: string) {
    await page.goto(`${nginx.url}/`);
    await page.selectOption('#task', task);
    await page.locator('#model option[value]:not([value=""])').first().waitFor({ state: 'attached', timeout: 15_000 });
    await page.click('#submit');
    await page.locator(`${waitFor}, #error:not([hidden])`).first().waitFor({ timeout: 30_000 });
    const error = (await page.locator('#error').isVisible()) ? await page.locator('#error').textContent() : null;
    expect(error, `form shows an error for ${task}`).toBeNull();
    await page.screenshot({ path: path.join(TEST_OUTPUT, `e2e-form-${task}.png`), fullPage: true });
    return { model: await page.locator('#model').inputValue() };
  }

  const field = (id: string) => page.locator(`#${id}`).inputValue();

  it('question answering: the answer is highlighted at its offsets in the context', async () => {
    const { model } = await runExample('question-answering', '#result blockquote, #result .big');
    const question = await field('qa-question');
    const context = await field('qa-context');
    const api = (await postJson(`${nginx.url}/v1/qa`, { question, context, model, top_k: 3 })).json<{ answers: QaAnswer[] }>();
    const best = api.answers[0]!;
    // The prefilled example is one the demo model answers right (if a retrained model does not, change the example).
    expect(best.answer, 'the answer to the prefilled example').toBe('Marie Curie');
    expect(context.slice(best.start, best.end)).toBe(best.answer);
    expect(await page.locator('#qa-answer').textContent()).toBe(best.answer);
    expect(await page.locator('#result mark').textContent()).toBe(best.answer);
    expect(await page.locator('#result blockquote').textContent()).toBe(context);
  });

  it('question answering feedback: "Right" saves it; "Wrong" takes the span the reader selects in the context as the correction', async () => {
    await runExample('question-answering', '#result blockquote');
    const context = await field('qa-context');
    await page.click('#result .fb-right');
    await page.locator('#result .fb-status', { hasText: 'Saved as' }).waitFor({ timeout: 15_000 });
    const rightId = await page.locator('#result .fb-status').getAttribute('data-feedback-id');
    // Again, and this time the answer is "wrong": select the right span in the quoted context.
    await page.click('#submit');
    await page.locator('#result .fb-wrong').waitFor({ timeout: 30_000 });
    await page.click('#result .fb-wrong');
    const wanted = 'radioactivity';
    await page.evaluate((word) => {
      const quote = document.querySelector('#result blockquote')!;
      const walker = document.createTreeWalker(quote, NodeFilter.SHOW_TEXT);
      for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        const at = n.textContent!.indexOf(word);
        if (at < 0) continue;
        const range = document.createRange();
        range.setStart(n, at);
        range.setEnd(n, at + word.length);
        const sel = window.getSelection()!;
        sel.removeAllRanges();
        sel.addRange(range);
        return;
      }
      throw new Error(`${word} not in the quote`);
    }, wanted);
    await page.click('#result .fb-send');
    await page.locator('#result .fb-status', { hasText: 'corrected to “radioactivity”' }).waitFor({ timeout: 15_000 });
    const wrongId = await page.locator('#result .fb-status').getAttribute('data-feedback-id');
    await page.screenshot({ path: path.join(TEST_OUTPUT, 'e2e-form-feedback.png'), fullPage: true });
    // The replica that stored each record exports it (each replica here has its own journal).
    const found = new Map<string, { answers: { text: string; answer_start: number }[]; context: string }>();
    for (const g of gateways) {
      const squad = (await request(`${g.url}/v1/feedback/export?format=squad`)).json<{ data: { paragraphs: { context: string; qas: { id: string; answers: { text: string; answer_start: number }[] }[] }[] }[] }>();
      for (const p of squad.data[0].paragraphs) for (const q of p.qas) found.set(q.id, { answers: q.answers, context: p.context });
    }
    const right = found.get(rightId!)!;
    expect(right.context).toBe(context);
    expect(right.answers[0].text).toBe('Marie Curie');
    const wrong = found.get(wrongId!)!;
    expect(wrong.answers).toEqual([{ text: wanted, answer_start: context.indexOf(wanted) }]);
  });

  it('sentence similarity: the score and verdict the API gives', async () => {
    const { model } = await runExample('sentence-similarity', '#sts-verdict');
    const api = (await postJson(`${nginx.url}/v1/similarity`, { sentence_1: await field('sts-1'), sentence_2: await field('sts-2'), model })).json<{ score: number; similar: boolean }>();
    expect(await page.locator('#sts-verdict').textContent()).toBe(api.similar ? 'Similar' : 'Not similar');
    expect(api.similar, 'the prefilled pair is a paraphrase').toBe(true);
    const shown = Number(/Cosine similarity (-?[\d.]+)/.exec((await page.locator('#sts-score').textContent()) ?? '')?.[1]);
    expect(shown).toBeCloseTo(api.score, 3);
  });

  it('essay scoring: the score on the model rubric, for each essay model', async () => {
    await runExample('essay-scoring', '#essay-score');
    const models = await page.locator('#model option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
    expect(models.length, 'both demo essay models are offered').toBeGreaterThanOrEqual(2);
    for (const model of models) {
      await page.selectOption('#model', model);
      await page.locator('#essay-score').evaluate((e) => e.remove());
      await page.click('#submit');
      await page.locator('#essay-score').waitFor({ timeout: 30_000 });
      const api = (await postJson(`${nginx.url}/v1/essays/score`, { essay: await field('essay'), model })).json<{ score: number; scale: { min: number; max: number } }>();
      expect(api.score).toBeGreaterThanOrEqual(api.scale.min);
      expect(api.score).toBeLessThanOrEqual(api.scale.max);
      const text = (await page.locator('#essay-score').textContent()) ?? '';
      expect(text).toContain(`on a ${api.scale.min}–${api.scale.max} scale`);
      expect(Number(text.split(' ')[0])).toBeCloseTo(api.score, 2);
      await page.screenshot({ path: path.join(TEST_OUTPUT, `e2e-form-essay-scoring-${model}.png`), fullPage: true });
    }
  });

  it('classification: the top label and one bar per label', async () => {
    const { model } = await runExample('text-classification', '#classify-label');
    const api = (await postJson(`${nginx.url}/v1/classify`, { inputs: await field('classify-text'), model })).json<{
      predictions: { label: string; score: number; labels: { label: string }[] }[];
    }>();
    const pred = api.predictions[0]!;
    expect(pred.label, 'the prefilled text describes a game').toBe('games');
    expect((await page.locator('#classify-label').textContent())?.startsWith(`${pred.label} (`)).toBe(true);
    expect(await page.locator('.bars li').count()).toBe(Math.max(1, pred.labels.length));
  });

  it('ask your documents: files uploaded to a collection, a question, each answer highlighted in its document', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'e2e-docs-'));
    const docs = {
      'curie.txt': 'Marie Curie was a Polish and naturalised French physicist and chemist who conducted pioneering research on radioactivity. She won the Nobel Prize in Chemistry in 1911.',
      'amazon.md': '# Amazon\n\nThe Amazon River flows east through Peru, Colombia and Brazil to the Atlantic Ocean.',
    };
    for (const [name, text] of Object.entries(docs)) writeFileSync(path.join(dir, name), text);
    await page.goto(`${nginx.url}/`);
    await page.selectOption('#task', 'documents');
    await page.locator('#model option[value]:not([value=""])').first().waitFor({ state: 'attached', timeout: 15_000 });
    await page.fill('#doc-collection', 'e2e-docs');
    await page.setInputFiles('#doc-files', Object.keys(docs).map((n) => path.join(dir, n)));
    await page.click('#doc-upload');
    await page.locator('#doc-upload-status', { hasText: 'Uploaded 2 documents' }).waitFor({ timeout: 30_000 });
    await page.fill('#doc-question', 'When did Marie Curie win the Nobel Prize in Chemistry?');
    await page.click('#submit');
    await page.locator('#doc-answers mark, #error:not([hidden])').first().waitFor({ timeout: 30_000 });
    expect(await page.locator('#error').isVisible()).toBe(false);
    const api = (await postJson(`${nginx.url}/v1/collections/e2e-docs/qa`, { question: 'When did Marie Curie win the Nobel Prize in Chemistry?', top_k: 3, model: await page.locator('#model').inputValue() })).json<{
      answers: { answer: string; document_id: string; start: number; end: number }[];
    }>();
    const best = api.answers[0]!;
    expect(best.answer, 'the demo reader answers the uploaded fact').toBe('1911');
    expect(docs[best.document_id as keyof typeof docs].slice(best.start, best.end)).toBe(best.answer);
    const marks = await page.locator('#doc-answers mark').allTextContents();
    expect(marks[0]).toBe(best.answer);
    expect(marks).toEqual(api.answers.map((a) => a.answer));
    expect(await page.locator('#doc-answers li').first().textContent()).toContain(`document ${best.document_id}`);
    await page.screenshot({ path: path.join(TEST_OUTPUT, 'e2e-form-documents.png'), fullPage: true });
  });

  it('the gateway itself serves the same form at / (the embedded default), working without nginx', async () => {
    const direct = await browser.newPage();
    try {
      await direct.goto(`${gateways[0]!.url}/`);
      await direct.selectOption('#task', 'text-classification');
      await direct.locator('#model option[value]:not([value=""])').first().waitFor({ state: 'attached', timeout: 15_000 });
      await direct.click('#submit');
      await direct.locator('#classify-label, #error:not([hidden])').first().waitFor({ timeout: 30_000 });
      expect(await direct.locator('#error').isVisible()).toBe(false);
      expect(await direct.locator('#classify-label').textContent()).toMatch(/^\S+ \(\d+\.\d %\)$/);
    } finally {
      await direct.close();
    }
  });

  it('the form stayed on its own origin and threw nothing', () => {
    expect(pageProblems).toEqual([]);
  });

  it('Swagger UI through nginx: "Try it out" on GET /v1/models returns 200', async () => {
    const docs = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
    try {
      await docs.goto(`${nginx.url}/docs`);
      const summary = docs.locator('.opblock-get .opblock-summary-path[data-path="/v1/models"]').first();
      await summary.waitFor({ timeout: 20_000 });
      await summary.click();
      const block = docs.locator('.opblock-get', { has: docs.locator('.opblock-summary-path[data-path="/v1/models"]') }).first();
      await block.locator('button.try-out__btn').click();
      await block.locator('button.execute').click();
      const status = block.locator('.live-responses-table .response .response-col_status').first();
      await status.waitFor({ timeout: 20_000 });
      expect((await status.textContent())?.trim()).toBe('200');
      expect(await block.locator('.request-url pre').first().textContent()).toContain(`${nginx.url}/v1/models`);
      await docs.screenshot({ path: path.join(TEST_OUTPUT, 'e2e-swagger-try-it-out.png'), fullPage: false });
    } finally {
      await docs.close();
    }
  });

  it('passes X-Request-Id through nginx to the gateway and back', async () => {
    const r = await request(`${nginx.url}/v1/models`, { headers: { 'x-request-id': 'e2e-request-42' } });
    expect(r.status).toBe(200);
    expect(r.headers['x-request-id']).toBe('e2e-request-42');
    const made = await request(`${nginx.url}/health/live`);
    expect(made.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
  });

  it('one replica killed during 200 requests through nginx: 0 failures', async () => {
    const victim = gateways[1]!;
    const bodies = [
      ['/v1/similarity', { sentence_1: 'A cat sits on the mat.', sentence_2: 'A cat is sitting on a mat.' }],
      ['/v1/classify', { inputs: 'library for reading and writing PNG images' }],
      ['/v1/qa', { question: 'Who maintains nginx?', context: 'The nginx package is maintained by the Debian Nginx Maintainers.' }],
      ['/v1/essays/score', { essay: 'Libraries matter. They give everyone access to books and quiet space, and they bring people together.' }],
    ] as const;
    const total = 200;
    const concurrency = 8;
    const statuses: number[] = [];
    const failures: string[] = [];
    let next = 0;
    let killed = false;
    const worker = async () => {
      while (next < total) {
        const i = next++;
        if (i === 60 && !killed) {
          killed = true;
          victim.child.kill('SIGKILL');
        }
        const [route, body] = bodies[i % bodies.length]!;
        try {
          const r = await postJson(`${nginx.url}${route}`, body, { 'x-request-id': `kill-${i}` });
          statuses.push(r.status);
          if (r.status !== 200) failures.push(`#${i} ${route}: ${r.status} ${r.text.slice(0, 200)}`);
        } catch (err) {
          statuses.push(0);
          failures.push(`#${i} ${route}: ${(err as Error).message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    expect(killed).toBe(true);
    expect(await victim.exited).toBe('SIGKILL');
    expect(statuses.length).toBe(total);
    expect(failures).toEqual([]);
    // Both replicas served before the kill; only the survivor after it.
    const upstreams = nginx.accessLog().split('\n').filter((l) => l.includes('rid=kill-'));
    expect(upstreams.some((l) => l.includes(`upstream=127.0.0.1:${victim.port}`))).toBe(true);
  });
});
