import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { aggregateWindows, resolveEssayHead, scaleToRubric, scoreEssay, windowScore, type EssayHead } from '../../src/tasks/essay.ts';
import { softmax } from '../../src/tasks/classify.ts';
import { GatewayError } from '../../src/errors.ts';

const regression: EssayHead = { name: 'essay-reg', output: 'identity', score: { min: 1, max: 6, round: 0.5 } };
const bands: EssayHead = { name: 'essay-bands', output: 'softmax', labels: ['1', '2', '3', '4', '5', '6'], score: { min: 1, max: 6, round: 0.5 } };

describe('scaleToRubric', () => {
  it.each([
    [3.24, { min: 1, max: 6, round: 0.5 }, 3],
    [3.25, { min: 1, max: 6, round: 0.5 }, 3.5],
    [3.74, { min: 1, max: 6, round: 0.5 }, 3.5],
    [-2, { min: 1, max: 6, round: 0.5 }, 1],
    [9.9, { min: 1, max: 6, round: 0.5 }, 6],
    [4.4, { min: 0, max: 10, round: 1 }, 4],
    [2.26, { min: 0, max: 5, round: 0.1 }, 2.3],
    [0.7, { min: 0, max: 1 }, 0.7],
    // The step counts from min: on a 1..4 rubric in steps of 1.5, 3 is off-grid.
    [3, { min: 1, max: 4, round: 1.5 }, 2.5],
    // A step that does not divide the range never rounds past max.
    [9.9, { min: 0, max: 10, round: 3 }, 9],
  ])('%d on %j → %d', (x, rubric, expected) => {
    expect(scaleToRubric(x, rubric)).toBe(expected);
  });

  it('rejects NaN rather than returning it', () => {
    expect(() => scaleToRubric(Number.NaN, { min: 1, max: 6 })).toThrow(GatewayError);
  });

  it('property: within [min, max] and on the grid', () => {
    fc.assert(
      fc.property(fc.double({ min: -100, max: 100, noNaN: true }), fc.constantFrom(0.25, 0.5, 1), (x, round) => {
        const y = scaleToRubric(x, { min: 1, max: 6, round });
        expect(y).toBeGreaterThanOrEqual(1);
        expect(y).toBeLessThanOrEqual(6);
        expect(Number.isInteger((y - 1) / round)).toBe(true);
      }),
    );
  });
});

describe('resolveEssayHead', () => {
  it('takes numeric labels as band scores', () => {
    expect(resolveEssayHead(bands).bandScores).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('prefers explicit bandScores, else spreads named bands evenly over the rubric', () => {
    expect(resolveEssayHead({ ...bands, score: { min: 0, max: 10, bandScores: [0, 2, 4, 6, 8, 10] } }).bandScores).toEqual([0, 2, 4, 6, 8, 10]);
    expect(resolveEssayHead({ ...bands, labels: ['low', 'mid', 'high'], score: { min: 0, max: 4 } }).bandScores).toEqual([0, 2, 4]);
  });

  it.each([
    ['no rubric', { name: 'x', output: 'identity' }, /rubric/],
    ['min ≥ max', { name: 'x', output: 'identity', score: { min: 6, max: 1 } }, /below max/],
    ['bad round', { name: 'x', output: 'identity', score: { min: 1, max: 6, round: 0 } }, /round/],
    ['softmax without bands', { name: 'x', output: 'softmax', score: { min: 1, max: 6 } }, /two bands/],
    ['labels vs bandScores', { name: 'x', output: 'softmax', labels: ['a', 'b'], score: { min: 1, max: 6, bandScores: [1, 2, 3] } }, /2 labels but 3/],
    ['unknown output', { name: 'x', output: 'argmax', score: { min: 1, max: 6 } }, /unsupported output/],
  ])('rejects %s, naming the model', (_name, head, message) => {
    const call = () => resolveEssayHead(head as EssayHead);
    expect(call).toThrow(GatewayError);
    expect(call).toThrow(message);
    expect(call).toThrow(/"x"/);
  });
});

describe('windowScore', () => {
  it('identity: the value is the score (a one-output head is not a softmax of 1.0)', () => {
    expect(windowScore([3.7], resolveEssayHead(regression))).toEqual({ value: 3.7 });
  });

  it('softmax: the expected band score, with the band probabilities', () => {
    const head = resolveEssayHead(bands);
    const logits = [0, 0, 5, 5, 0, 0];
    const s = windowScore(logits, head);
    expect(s.value).toBeCloseTo(3.5, 6);
    expect(s.bandProbabilities).toEqual(Array.from(softmax(logits)));
  });

  it('sigmoid: stretched over the rubric', () => {
    const head = resolveEssayHead({ ...regression, output: 'sigmoid' });
    expect(windowScore([0], head).value).toBe(3.5);
    expect(windowScore([50], head).value).toBeCloseTo(6, 9);
  });

  it('rejects an output of the wrong width or a non-finite value', () => {
    expect(() => windowScore([1, 2], resolveEssayHead(regression))).toThrow(/expects 1/);
    expect(() => windowScore([1, 2, 3], resolveEssayHead(bands))).toThrow(/expects 6/);
    expect(() => windowScore([Number.NaN], resolveEssayHead(regression))).toThrow(GatewayError);
  });
});

describe('aggregateWindows / scoreEssay', () => {
  it('weights windows by their essay tokens and reports the count', () => {
    const agg = aggregateWindows([
      { score: { value: 2 }, tokens: 300 },
      { score: { value: 5 }, tokens: 100 },
    ]);
    expect(agg).toEqual({ value: 2.75, windows: 2 });
  });

  it('averages band probabilities with the same weights', () => {
    const agg = aggregateWindows([
      { score: { value: 1, bandProbabilities: [1, 0] }, tokens: 1 },
      { score: { value: 2, bandProbabilities: [0, 1] }, tokens: 3 },
    ]);
    expect(agg.bandProbabilities).toEqual([0.25, 0.75]);
    expect(agg.value).toBe(1.75);
  });

  it('counts windows without tokens equally rather than dividing by zero', () => {
    expect(aggregateWindows([{ score: { value: 4 }, tokens: 0 }]).value).toBe(4);
    expect(() => aggregateWindows([])).toThrow(GatewayError);
  });

  it('scores a long essay read in three windows', () => {
    const head = resolveEssayHead(regression);
    const out = scoreEssay(
      [
        { output: [4.2], tokens: 510 },
        { output: [3.9], tokens: 510 },
        { output: [1.0], tokens: 20 },
      ],
      head,
    );
    expect(out.windows).toBe(3);
    expect(out.raw).toBeCloseTo((4.2 * 510 + 3.9 * 510 + 20) / 1040, 9);
    expect(out.score).toBe(4);
    expect(out.scale).toEqual({ min: 1, max: 6 });
    expect(out.bandProbabilities).toBeUndefined();
  });

  it('scores a banded essay to the rubric grid', () => {
    // Torn between bands 4 and 5: 4.5, where an argmax would flip between them.
    const out = scoreEssay([{ output: [0, 0, 0, 9, 9, 0], tokens: 100 }], resolveEssayHead(bands));
    expect(out.score).toBe(4.5);
    expect(out.bandProbabilities).toHaveLength(6);
  });
});
