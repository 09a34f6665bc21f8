/**
 * The web form in headless Chromium, served by the shipped nginx config (with its CSP) in front of a
 * stand-in replica that answers in the shapes of ../shared/API.md. Checks what the form does with
 * each answer shape and each error; test/e2e runs the same form against real gateways.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { TEST_OUTPUT, freePort, launchChromium, startNginx, type NginxHandle } from './harness.ts';

type Mode = 'ok' | '400' | '429' | '503';

async function fakeGateway() {
  const state = { mode: 'ok' as Mode, posts: [] as { url: string; body: Record<string, unknown> }[] };
  const json = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': 'rid-1', 'x-total-time': '7', ...headers });
    res.end(JSON.stringify(body));
  };
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      if (req.method === 'GET' && req.url === '/v1/models') {
        // The shape of GET /v1/models (src/routes/v1/models.ts): an OpenAI-style list.
        return json(res, 200, {
          object: 'list',
          data: [
            { name: 'qa-a', task: 'question-answering', state: 'ready', default: true, version: '1', description: 'demo QA' },
            { name: 'qa-b', task: 'question-answering', state: 'loading' },
            { name: 'sts-a', task: 'sentence-similarity', state: 'ready', default: true, threshold: 0.5 },
            { name: 'essay-a', task: 'essay-scoring', state: 'ready', default: true, score: { min: 1, max: 6 } },
            { name: 'essay-b', task: 'essay-scoring', state: 'ready', score: { min: 1, max: 6, round: 0.5 } },
            { name: 'cls-a', task: 'text-classification', state: 'ready', default: true, labels: ['utils', 'net', 'games'] },
          ],
        });
      }
      const body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
      state.posts.push({ url: req.url ?? '', body });
      if (state.mode === '400') return json(res, 400, { error: { code: 'invalid_request', message: 'body/question must not be empty' } });
      if (state.mode === '429') return json(res, 429, { error: { code: 'rate_limited', message: 'rate limit' } }, { 'retry-after': '3' });
      if (state.mode === '503') return json(res, 503, { error: { code: 'overloaded', message: 'queue full' } }, { 'retry-after': '4' });
      switch (req.url) {
        case '/v1/qa': {
          const context = String(body.context);
          const answer = '<b>Maintainers</b>';
          const start = context.indexOf(answer);
          return json(res, 200, { model: body.model, answers: [{ answer, score: 0.91, start, end: start + answer.length }, { answer: 'nginx', score: 0.05, start: 0, end: 5 }] });
        }
        case '/v1/similarity':
          return json(res, 200, { model: body.model, score: 0.8, similar: true, threshold: 0.5 });
        case '/v1/essays/score':
          return json(res, 200, { model: body.model, score: 4.5, scale: { min: 1, max: 6 } });
        case '/v1/classify':
          return json(res, 200, {
            model: body.model,
            predictions: [{ label: 'net', score: 0.7, labels: [{ label: 'utils', score: 0.2 }, { label: 'net', score: 0.7 }, { label: 'games', score: 0.1 }] }],
          });
        default:
          return json(res, 404, { error: { code: 'route_not_found', message: 'no route' } });
      }
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return { state, addr: `127.0.0.1:${port}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('web form (stand-in API, real nginx, headless Chromium)', () => {
  let api: Awaited<ReturnType<typeof fakeGateway>>;
  let nginx: NginxHandle;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    mkdirSync(TEST_OUTPUT, { recursive: true });
    api = await fakeGateway();
    nginx = await startNginx([api.addr], { RATE: '1000r/s', BURST: '1000' });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().includes('status of 4') && !m.text().includes('status of 5')) problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('request', (r) => {
      if (!r.url().startsWith(nginx.url) && !r.url().startsWith('data:')) problems.push(`off-origin request: ${r.url()}`);
    });
    await page.goto(`${nginx.url}/`);
    await page.locator('#model option[value="qa-a"]').waitFor({ state: 'attached' });
  });
  afterAll(async () => {
    await browser?.close();
    await nginx?.stop();
    await api?.close();
  });

  it('lists only ready models, grouped under their task, default first', async () => {
    expect(await page.locator('#model option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value))).toEqual(['qa-a']);
    expect(await page.locator('#model optgroup').getAttribute('label')).toBe('Question answering');
    await expect.poll(() => page.locator('#models-status').textContent()).toContain('qa-b (loading)');
    await page.selectOption('#task', 'essay-scoring');
    expect(await page.locator('#model option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value))).toEqual(['essay-a', 'essay-b']);
    expect(await page.locator('#model-info').textContent()).toContain('rubric 1–6');
  });

  it('question answering: highlights the answer inside the context, as text (no HTML injection)', async () => {
    await page.selectOption('#task', 'question-answering');
    await page.getByLabel('Question').fill('Who maintains it?');
    await page.getByLabel(/^Context/).fill('nginx is kept by the Debian Nginx <b>Maintainers</b> <img src=x onerror="window.pwned=1"> team.');
    await page.getByLabel('Question').press('Enter'); // the keyboard submits the form
    await page.locator('#qa-answer').waitFor();
    expect(await page.locator('#qa-answer').textContent()).toBe('<b>Maintainers</b>');
    expect(await page.locator('#result mark').textContent()).toBe('<b>Maintainers</b>');
    expect(await page.locator('#result blockquote').textContent()).toContain('<img src=x');
    expect(await page.locator('#result img, #result b').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined();
    expect(await page.locator('#result-meta').textContent()).toContain('request id rid-1');
    expect(api.state.posts.at(-1)).toMatchObject({ url: '/v1/qa', body: { model: 'qa-a', question: 'Who maintains it?' } });
    await page.screenshot({ path: path.join(TEST_OUTPUT, 'form-stand-in-qa.png'), fullPage: true });
  });

  it('sentence similarity: score and verdict', async () => {
    await page.selectOption('#task', 'sentence-similarity');
    await page.click('#submit');
    await page.locator('#sts-verdict').waitFor();
    expect(await page.locator('#sts-verdict').textContent()).toBe('Similar');
    expect(await page.locator('#sts-score').textContent()).toContain('0.8');
    expect(api.state.posts.at(-1)?.body).toMatchObject({ model: 'sts-a', sentence_1: expect.any(String), sentence_2: expect.any(String) });
  });

  it('essay scoring: score on the rubric of the chosen model', async () => {
    await page.selectOption('#task', 'essay-scoring');
    await page.selectOption('#model', 'essay-b');
    await page.click('#submit');
    await page.locator('#essay-score').waitFor();
    expect(await page.locator('#essay-score').textContent()).toBe('4.5 on a 1–6 scale');
    expect(api.state.posts.at(-1)?.body).toMatchObject({ model: 'essay-b', essay: expect.stringContaining('libraries') });
  });

  it('classification: one bar per label, best first', async () => {
    await page.selectOption('#task', 'text-classification');
    await page.click('#submit');
    await page.locator('#classify-label').waitFor();
    expect(await page.locator('#classify-label').textContent()).toBe('net (70.0 %)');
    expect(await page.locator('.bars li .name').allTextContents()).toEqual(['net', 'utils', 'games']);
  });

  it("shows the API's error message", async () => {
    api.state.mode = '400';
    await page.click('#submit');
    await expect.poll(() => page.locator('#error').textContent()).toContain('body/question must not be empty');
    expect(await page.locator('#error').isVisible()).toBe(true);
    api.state.mode = 'ok';
  });

  it('says "busy, retry in N s" on 429 and 503 and holds the button until then', async () => {
    for (const [mode, seconds] of [['429', 3], ['503', 4]] as const) {
      api.state.mode = mode;
      await page.click('#submit');
      await expect.poll(() => page.locator('#error').textContent()).toMatch(new RegExp(`busy, retry in (${seconds}|${seconds - 1}) s`, 'i'));
      expect(await page.locator('#submit').isDisabled()).toBe(true);
      api.state.mode = 'ok';
      await page.locator('#submit:not([disabled])').waitFor({ timeout: 8_000 });
    }
  });

  it('fits a phone screen and every field has a label', async () => {
    await page.setViewportSize({ width: 360, height: 740 });
    await page.selectOption('#task', 'question-answering');
    await page.click('#submit');
    await page.locator('#qa-answer').waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360);
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll('input, textarea, select')].filter((f) => !document.querySelector(`label[for="${f.id}"]`)).map((f) => f.id),
    );
    expect(unlabelled).toEqual([]);
    await page.screenshot({ path: path.join(TEST_OUTPUT, 'form-stand-in-phone.png'), fullPage: true });
    expect(problems).toEqual([]);
  });
});
