/**
 * Pure formatting and aggregation for the sidebar: no DOM, no network, so it runs under
 * `node --test`. The server speaks SI base units (energy in J, emissions in g CO2e, water in L);
 * everything here turns those into the unit a reader expects at that size.
 */

/** A figure with its uncertainty, as the server's `totals` give it. */
export interface IRanged {
  value: number;
  low?: number | null;
  high?: number | null;
}

/** Joules in one watt-hour, exactly. */
export const J_PER_WH = 3600;

/** Shown for a figure the server does not have (null, missing, NaN). */
export const MISSING = '\u2014';

interface IScale {
  factor: number;
  unit: string;
}

// Largest unit first; the first whose factor the magnitude reaches is used.
const ENERGY_SCALES: IScale[] = [
  { factor: 3.6e9, unit: 'MWh' },
  { factor: 3.6e6, unit: 'kWh' },
  { factor: J_PER_WH, unit: 'Wh' },
  { factor: 3.6, unit: 'mWh' },
  { factor: 1, unit: 'J' }
];

const MASS_SCALES: IScale[] = [
  { factor: 1e6, unit: 't' },
  { factor: 1e3, unit: 'kg' },
  { factor: 1, unit: 'g' },
  { factor: 1e-3, unit: 'mg' }
];

const VOLUME_SCALES: IScale[] = [
  { factor: 1e3, unit: 'm\u00b3' },
  { factor: 1, unit: 'L' },
  { factor: 1e-3, unit: 'mL' }
];

/** True for a number that can be shown (not null, undefined, NaN or infinite). */
export function isFigure(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/**
 * `value` with `digits` significant digits after the point, without trailing zeros or exponent
 * notation. Whole digits are kept: 12345 stays "12345", since "12300" would read as exact.
 */
export function significant(value: number, digits = 3): string {
  if (!isFigure(value)) {
    return MISSING;
  }
  if (value === 0) {
    return '0';
  }
  const magnitude = Math.floor(Math.log10(Math.abs(value)));
  const decimals = Math.max(0, digits - 1 - magnitude);
  const text = value.toFixed(Math.min(decimals, 20));
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
}

function pickScale(value: number, scales: IScale[]): IScale {
  const size = Math.abs(value);
  for (const scale of scales) {
    if (size >= scale.factor) {
      return scale;
    }
  }
  return scales[scales.length - 1];
}

function scaled(value: number | null | undefined, scales: IScale[], digits: number): string {
  if (!isFigure(value)) {
    return MISSING;
  }
  if (value === 0) {
    return `0 ${scales.find(s => s.factor === 1)!.unit}`;
  }
  let scale = pickScale(value, scales);
  let shown = significant(value / scale.factor, digits);
  // Rounding can reach the next unit (999.96 Wh -> "1000 Wh"): show it in that unit instead.
  const index = scales.indexOf(scale);
  if (index > 0 && Math.abs(Number(shown)) * scale.factor >= scales[index - 1].factor) {
    scale = scales[index - 1];
    shown = significant(value / scale.factor, digits);
  }
  return `${shown} ${scale.unit}`;
}

/** Energy given in joules, in J, mWh, Wh, kWh or MWh. */
export function formatEnergy(joules: number | null | undefined, digits = 3): string {
  return scaled(joules, ENERGY_SCALES, digits);
}

/** Mass given in grams (of CO2e), in mg, g, kg or t. */
export function formatMass(grams: number | null | undefined, digits = 3): string {
  return scaled(grams, MASS_SCALES, digits);
}

/** Water given in litres, in mL, L or m³. */
export function formatWater(litres: number | null | undefined, digits = 3): string {
  return scaled(litres, VOLUME_SCALES, digits);
}

/**
 * A ranged figure as "value (low–high)", each part in its own unit; just the value when the
 * range is missing or collapses onto it.
 */
export function formatRange(
  figure: IRanged | null | undefined,
  format: (value: number | null | undefined) => string
): string {
  if (!figure || !isFigure(figure.value)) {
    return MISSING;
  }
  const { value, low, high } = figure;
  if (!isFigure(low) || !isFigure(high) || (low === value && high === value)) {
    return format(value);
  }
  return `${format(value)} (${format(low)}\u2013${format(high)})`;
}

/** A ratio such as the development overhead (all runs / selected runs) as "3.2×". */
export function formatRatio(ratio: number | null | undefined, digits = 2): string {
  if (!isFigure(ratio)) {
    return MISSING;
  }
  return `${significant(ratio, digits)}\u00d7`;
}

/** A share in [0, 1] as a percentage: "12%", "0.5%", "<0.1%". */
export function formatShare(share: number | null | undefined): string {
  if (!isFigure(share)) {
    return MISSING;
  }
  const percent = share * 100;
  if (percent > 0 && percent < 0.1) {
    return '<0.1%';
  }
  return `${significant(percent, percent < 10 ? 2 : 3)}%`;
}

/** `part / whole`, or null when the whole is zero or either is missing. */
export function ratio(part: number | null | undefined, whole: number | null | undefined): number | null {
  if (!isFigure(part) || !isFigure(whole) || whole === 0) {
    return null;
  }
  return part / whole;
}

/** The sum of `key` over `rows`, missing figures counted as zero. */
export function sumOf<T>(rows: readonly T[], key: (row: T) => number | null | undefined): number {
  let total = 0;
  for (const row of rows) {
    const value = key(row);
    if (isFigure(value)) {
      total += value;
    }
  }
  return total;
}

/** "1 run" / "3 runs". */
export function plural(count: number, noun: string, nouns = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : nouns}`;
}

/** Statuses as "12 ok, 2 crashed", largest count first, then by name. */
export function formatStatuses(statuses: Record<string, number> | null | undefined): string {
  const entries = Object.entries(statuses ?? {}).filter(([, n]) => n > 0);
  entries.sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return entries.map(([status, n]) => `${n} ${status}`).join(', ');
}

/**
 * What a redundant run repeats, as one line: "repeats #12 baseline (ok)". The server keeps the
 * id of an earlier run that was deleted since, with no name, status or start.
 */
export function describeRepeat(
  repeats: { id?: number | null; name?: string | null; status?: string | null } | null | undefined
): string {
  if (!repeats || repeats.id === null || repeats.id === undefined) {
    return 'repeats an earlier run';
  }
  if (!repeats.status) {
    return `repeats #${repeats.id}, no longer in the registry`;
  }
  const name = repeats.name ? ` ${repeats.name}` : '';
  return `repeats #${repeats.id}${name} (${repeats.status})`;
}

/** A file name for the statement of `project` (and `notebook`) in `format`, safe on every OS. */
export function statementFilename(
  project: string | null | undefined,
  notebook: string | null | undefined,
  format: 'md' | 'latex'
): string {
  const parts = ['carbon-statement', project, notebook ? notebook.replace(/\.ipynb$/, '') : null];
  const stem = parts
    .filter((part): part is string => !!part)
    .join('-')
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/_+/g, '_');
  return `${stem}.${format === 'md' ? 'md' : 'tex'}`;
}

/** A query string of the parameters that are set, e.g. "?project=p&notebook=a%20b.ipynb". */
export function queryString(params: Record<string, string | number | null | undefined>): string {
  const pairs = Object.entries(params)
    .filter(([, value]) => value !== null && value !== undefined && value !== '')
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`);
  return pairs.length ? `?${pairs.join('&')}` : '';
}
