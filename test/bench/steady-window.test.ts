import { describe, expect, it } from 'vitest';
import { steadyWindow } from '../../bench/steady-window.ts';

/** Arrival times of bursts: each burst `size` answers 0.5 ms apart, bursts `every` ms apart. */
const bursts = (n: number, size: number, every: number) => Array.from({ length: n * size }, (_, i) => Math.floor(i / size) * every + (i % size) * 0.5);

describe('steadyWindow (the bench\'s steady-state measurement window)', () => {
  it('starts and ends on the last answer of a burst, never inside one', () => {
    // 10 bursts of 4 answers, 100 ms apart: answer 6 (index 5) is in the second burst, which ends at index 7.
    const t = bursts(10, 4, 100);
    const [s, e] = steadyWindow(t, 6, 8)!;
    expect(s).toBe(7);
    // index 15 is the last of the fourth burst: 8 answers after the start, whole bursts only.
    expect(e).toBe(15);
    expect(e - s).toBe(8);
    expect(t[e] - t[s]).toBe(200);
  });

  it('counts whole bursts: the rate is answers over time between burst ends', () => {
    const t = bursts(20, 3, 50);
    const [s, e] = steadyWindow(t, 3, 7)!;
    // 60 answers/s at 3 per 50 ms: (e - s) answers in t[e] - t[s] ms.
    expect(((e - s) / (t[e] - t[s])) * 1000).toBeCloseTo(60, 5);
  });

  it('takes single answers as bursts of one when they are spread out', () => {
    const t = Array.from({ length: 30 }, (_, i) => i * 20);
    expect(steadyWindow(t, 8, 10)).toEqual([7, 17]);
  });

  it('has no window when there are fewer answers than skip + count', () => {
    expect(steadyWindow([0, 10, 20], 2, 5)).toBeUndefined();
    expect(steadyWindow([], 0, 1)).toBeUndefined();
  });
});
