import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { float32ArrayJson } from '../../src/routes/float32-json.ts';

/** The float32 of every bit pattern fast-check draws (all exponents, subnormals, both signs). */
const anyFloat32 = fc.integer({ min: 0, max: 2 ** 32 - 1 }).map((bits) => new Float32Array(Uint32Array.of(bits).buffer)[0]);
const significantDigits = (text: string) => text.replace(/^-/, '').replace(/e.*$/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '').length;

describe('float32ArrayJson', () => {
  it('prints every finite float32 as text that reads back as the same float32, never longer than JavaScript prints it', () => {
    fc.assert(
      fc.property(fc.array(anyFloat32.filter(Number.isFinite), { maxLength: 64 }), (xs) => {
        const v = Float32Array.from(xs);
        const text = float32ArrayJson(v)!;
        const back = JSON.parse(text) as number[];
        expect(Float32Array.from(back)).toEqual(Float32Array.from(v, (x) => (x === 0 ? 0 : x)));
        const own = `[${v.join(',')}]`;
        expect(text.length).toBeLessThanOrEqual(own.length);
      }),
      { numRuns: 2000, seed: 7 },
    );
  });

  it('uses at most 9 significant digits in its own range (1e-6 to 1e7), 8 where they read back', () => {
    fc.assert(
      fc.property(anyFloat32.filter((x) => Math.abs(x) >= 1e-6 && Math.abs(x) < 1e7), (x) => {
        const text = float32ArrayJson(Float32Array.of(x))!.slice(1, -1);
        expect(text).not.toMatch(/e/);
        expect(significantDigits(text)).toBeLessThanOrEqual(9);
        const eight = Number(Math.abs(x).toPrecision(8));
        if (Math.fround(eight) === Math.abs(x)) expect(significantDigits(text)).toBeLessThanOrEqual(8);
      }),
      { numRuns: 5000, seed: 11 },
    );
  });

  it('writes the usual cases as expected, and JavaScript\'s exponent form outside its range', () => {
    const cases: [number, string][] = [
      [0, '0'], [-0, '0'], [1, '1'], [-1, '-1'], [0.1, '0.1'], [0.5, '0.5'], [-0.25, '-0.25'], [100, '100'], [1e6, '1000000'],
      [0.012345678, '0.012345678'], [0.00012, '0.00012'], [1234567, '1234567'], [2e-6, '0.000002'], [1e-6, String(Math.fround(1e-6))],
      [1e-7, String(Math.fround(1e-7))], [3.4e38, String(Math.fround(3.4e38))], [1e-45, String(Math.fround(1e-45))],
    ];
    for (const [x, text] of cases) expect(float32ArrayJson(Float32Array.of(x)), String(x)).toBe(`[${text}]`);
    expect(float32ArrayJson(new Float32Array(0))).toBe('[]');
  });

  it('has no text for NaN or an infinity', () => {
    expect(float32ArrayJson(Float32Array.of(1, Number.NaN))).toBeUndefined();
    expect(float32ArrayJson(Float32Array.of(Infinity, 1))).toBeUndefined();
    expect(float32ArrayJson(Float32Array.of(-Infinity))).toBeUndefined();
  });

  it('prints a vector longer than its scratch buffer, and the next short one unharmed', () => {
    const long = Float32Array.from({ length: 5000 }, (_, i) => -Math.fround(1 / (i + 3)));
    expect(Float32Array.from(JSON.parse(float32ArrayJson(long)!) as number[])).toEqual(long);
    expect(float32ArrayJson(Float32Array.of(2, 3))).toBe('[2,3]');
  });
});
