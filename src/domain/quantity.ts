/**
 * Kubernetes resource quantities (`1Gi`, `1073741824`, `1.5G`, `500M`, `2e9`), compared exactly. Follows
 * apimachinery's `pkg/api/resource/quantity.go`: a signed decimal number, then a binary suffix (Ki … Ei), a decimal
 * suffix (n, u, m, k, M, G, T, P, E) or an exponent (`e3`, `E-2`).
 */

/** An exact value: `num / den` (den > 0). */
interface Exact {
  readonly num: bigint;
  readonly den: bigint;
}

const BINARY: Record<string, bigint> = {
  Ki: 2n ** 10n,
  Mi: 2n ** 20n,
  Gi: 2n ** 30n,
  Ti: 2n ** 40n,
  Pi: 2n ** 50n,
  Ei: 2n ** 60n,
};
const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };

const SYNTAX = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(.*)$/;

/** Parses a quantity into an exact fraction; undefined when it is not one. */
function parseExact(text: string): Exact | undefined {
  const m = SYNTAX.exec(text);
  if (!m) return undefined;
  const [, sign = '', number = '', suffix = ''] = m;
  const [whole = '', fraction = ''] = number.split('.');
  let num = BigInt(`${whole || '0'}${fraction}`) * (sign === '-' ? -1n : 1n);
  let den = 10n ** BigInt(fraction.length);
  const binary = BINARY[suffix];
  let exponent: number | undefined;
  if (binary !== undefined) num *= binary;
  else if (suffix in DECIMAL) exponent = DECIMAL[suffix];
  else {
    const e = /^[eE]([+-]?\d+)$/.exec(suffix);
    if (!e) return undefined;
    exponent = Number(e[1]);
  }
  if (exponent !== undefined) {
    if (exponent >= 0) num *= 10n ** BigInt(exponent);
    else den *= 10n ** BigInt(-exponent);
  }
  return { num, den };
}

/** Whether `text` is a quantity. */
export function isQuantity(text: string | undefined): boolean {
  return text !== undefined && parseExact(text) !== undefined;
}

/**
 * Compares two quantities exactly (`1Gi` equals `1024Mi` and `1073741824`). An absent or unparsable quantity counts
 * as zero, as an absent entry of a `ResourceList` does in `Quantity.Cmp`.
 *
 * @returns a negative number when a < b, 0 when equal, a positive number when a > b.
 */
export function compareQuantities(a: string | undefined, b: string | undefined): number {
  const x = (a === undefined ? undefined : parseExact(a)) ?? { num: 0n, den: 1n };
  const y = (b === undefined ? undefined : parseExact(b)) ?? { num: 0n, den: 1n };
  const left = x.num * y.den;
  const right = y.num * x.den;
  return left < right ? -1 : left > right ? 1 : 0;
}

/**
 * A quantity as a whole number of bytes (rounded up, as `Quantity.Value()` does), e.g. `1Mi` → 1048576, `1.5k` →
 * 1500; undefined when `text` is absent or not a quantity. Values beyond 2^53 lose precision (9 PB and up).
 */
export function quantityToBytes(text: string | undefined): number | undefined {
  const exact = text === undefined ? undefined : parseExact(text);
  if (exact === undefined) return undefined;
  const whole = exact.num / exact.den + (exact.num % exact.den > 0n ? 1n : 0n);
  return Number(whole);
}
