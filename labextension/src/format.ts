/**
 * Pure formatting and aggregation for the sidebar: no DOM, no network, so it runs under
 * `node --test`. The server speaks SI base units (energy in J, emissions in g CO2e, water in L);
 * the figures are shown by the package's one display scheme (notebook_carbon/units.py, whose
 * docstring states the rules), implemented again here: both are tested against the same table of
 * cases, tests/data/display_cases.json, so the sidebar prints a figure as the summary line, the
 * dashboard and a statement print it.
 */

/** A figure with its uncertainty, as the server's `totals` give it. */
export interface IRanged {
  value: number | null;
  low?: number | null;
  high?: number | null;
}

/** Shown for a figure that is not known (null, missing, NaN or infinite). */
export const MISSING = 'n/a';

/** Below this much of the smallest unit a figure is shown as "< 0.001 unit". */
const SMALLEST = '0.001';

/** The quantities that have units: energy (J), mass (g), emissions (g CO2e), water (L), power (W). */
export type Kind = 'energy' | 'mass' | 'emissions' | 'water' | 'power';

/** A unit: its size in the base unit, and its name. */
export type Scale = [number, string];

// Largest unit first; each kind's base unit (factor 1) is what a zero is shown in.
const SCALES: Record<Kind, Scale[]> = {
  energy: [
    [3.6e12, 'GWh'],
    [3.6e9, 'MWh'],
    [3.6e6, 'kWh'],
    [3600, 'Wh'],
    [1000, 'kJ'],
    [1, 'J'],
    [0.001, 'mJ']
  ],
  mass: [
    [1e6, 't'],
    [1000, 'kg'],
    [1, 'g'],
    [0.001, 'mg']
  ],
  emissions: [
    [1e6, 't CO2e'],
    [1000, 'kg CO2e'],
    [1, 'g CO2e'],
    [0.001, 'mg CO2e']
  ],
  water: [
    [1000, 'm\u00b3'],
    [1, 'L'],
    [0.001, 'mL']
  ],
  power: [
    [1e6, 'MW'],
    [1000, 'kW'],
    [1, 'W'],
    [0.001, 'mW']
  ]
};

function known(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** `size` > 0 to 3 significant figures, ties away from zero on the float's exact value. */
function sig3(size: number): { digits: string; exponent: number } {
  const [mantissa, exponent] = size.toExponential(2).split('e');
  return { digits: mantissa.replace('.', ''), exponent: Number(exponent) };
}

function grouped(whole: string): string {
  return whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** `size` >= 0 as the scheme writes a figure: 3 significant figures, whole digits kept. */
function magnitude(size: number): string {
  if (size === 0) {
    return '0';
  }
  const { digits, exponent } = sig3(size);
  if (exponent >= 3) {
    return grouped(size.toFixed(0));
  }
  if (exponent < -3) {
    return `< ${SMALLEST}`;
  }
  if (exponent >= 2) {
    return digits;
  }
  const text =
    exponent >= 0
      ? `${digits.slice(0, exponent + 1)}.${digits.slice(exponent + 1)}`
      : `0.${'0'.repeat(-exponent - 1)}${digits}`;
  return text.replace(/0+$/, '').replace(/\.$/, '');
}

function signed(value: number): string {
  const shown = magnitude(Math.abs(value));
  if (value >= 0 || shown === '0') {
    return shown;
  }
  return shown.startsWith('<') ? `> -${SMALLEST}` : `-${shown}`;
}

function roundsToOne(size: number): boolean {
  return size > 0 && sig3(size).exponent >= 0;
}

/** A plain figure: "56.3", "0.00123", "12,345", "< 0.001". */
export function formatNumber(value: number | null | undefined): string {
  return known(value) ? signed(value) : MISSING;
}

/**
 * The unit `value` of `kind` is shown in, as [its size in the base unit, its name]; zero and
 * unknown values take the base unit.
 */
export function unitFor(kind: Kind, value: number | null | undefined): Scale {
  const scales = SCALES[kind];
  if (!known(value) || value === 0) {
    return scales.find(scale => scale[0] === 1)!;
  }
  const size = Math.abs(value);
  return scales.find(([factor]) => roundsToOne(size / factor)) ?? scales[scales.length - 1];
}

function quantity(value: number | null | undefined, kind: Kind): string {
  if (!known(value)) {
    return MISSING;
  }
  const [factor, unit] = unitFor(kind, value);
  return `${signed(value / factor)} ${unit}`;
}

/** Joules as "850 mJ", "35.2 J", "2.5 kJ" below 1 Wh, then "12.3 Wh", "1.23 kWh". */
export function formatEnergy(joules: number | null | undefined): string {
  return quantity(joules, 'energy');
}

/** Grams as "12.3 mg", "4.1 g", "1.23 kg", "2.5 t". */
export function formatMass(grams: number | null | undefined): string {
  return quantity(grams, 'mass');
}

/** Grams of CO2e as "4.1 g CO2e". */
export function formatEmissions(grams: number | null | undefined): string {
  return quantity(grams, 'emissions');
}

/** Litres as "12.5 mL", "3 L", "4.2 m³". */
export function formatWater(litres: number | null | undefined): string {
  return quantity(litres, 'water');
}

/** Watts as "500 mW", "41.2 W", "1.2 kW". */
export function formatPower(watts: number | null | undefined): string {
  return quantity(watts, 'power');
}

/** Seconds as "0.8 ms", "340 ms", "2.3 s", "2 min 13 s", "1 h 02 min" (hours keep counting). */
export function formatDuration(seconds: number | null | undefined): string {
  if (!known(seconds)) {
    return MISSING;
  }
  if (seconds < 0) {
    const shown = formatDuration(-seconds);
    return shown === '0 s' ? shown : `-${shown}`;
  }
  if (seconds === 0) {
    return '0 s';
  }
  if (!roundsToOne(seconds)) {
    return `${magnitude(seconds * 1000)} ms`;
  }
  const { digits, exponent } = sig3(seconds);
  if (exponent < 1 || (exponent === 1 && Number(digits) < 600)) {
    return `${magnitude(seconds)} s`;
  }
  const wholeS = Number(seconds.toFixed(0));
  if (wholeS < 3600) {
    return `${Math.floor(wholeS / 60)} min ${String(wholeS % 60).padStart(2, '0')} s`;
  }
  const wholeMin = Number((seconds / 60).toFixed(0));
  const hours = grouped(String(Math.floor(wholeMin / 60)));
  return `${hours} h ${String(wholeMin % 60).padStart(2, '0')} min`;
}

/** A ratio (the development overhead) as "10.3×", "1×". */
export function formatRatio(ratio: number | null | undefined): string {
  return known(ratio) ? `${signed(ratio)}\u00d7` : MISSING;
}

/**
 * A fraction as per cent to one decimal, a space before the sign: "12.3 %", "5 %"; "< 0.1 %" for
 * a share that would round to none, "> 99.9 %" for one that would round to all but is not.
 */
export function formatPercent(fraction: number | null | undefined): string {
  if (!known(fraction)) {
    return MISSING;
  }
  const percent = fraction * 100;
  const tenths = Number(Math.abs(percent).toFixed(1).replace('.', ''));
  if (percent !== 0 && tenths === 0) {
    return percent > 0 ? '< 0.1 %' : '> -0.1 %';
  }
  if (tenths === 1000 && percent > 0 && percent < 100) {
    return '> 99.9 %';
  }
  const tenth = tenths % 10;
  const shown = grouped(String(Math.floor(tenths / 10))) + (tenth ? `.${tenth}` : '');
  return percent < 0 ? `-${shown} %` : `${shown} %`;
}

/**
 * The range low–high in the unit the figure is shown in: "0.9–1.5 kWh"; that unit's figure
 * alone when both ends show alike, MISSING when an end is unknown.
 */
export function formatSpan(figure: IRanged | null | undefined, kind: Kind): string {
  const low = figure?.low;
  const high = figure?.high;
  if (!known(low) || !known(high)) {
    return MISSING;
  }
  const value = figure?.value;
  const [factor, unit] = unitFor(kind, known(value) ? value : Math.max(Math.abs(low), Math.abs(high)));
  const lowText = signed(low / factor);
  const highText = signed(high / factor);
  return lowText === highText ? `${lowText} ${unit}` : `${lowText}\u2013${highText} ${unit}`;
}

/**
 * A figure with its range: "1.2 kWh (0.9–1.5 kWh)"; just the figure when the range is unknown
 * or shows the same as the figure.
 */
export function formatRange(figure: IRanged | null | undefined, kind: Kind): string {
  const shown = quantity(figure?.value, kind);
  if (shown === MISSING || !known(figure?.low) || !known(figure?.high)) {
    return shown;
  }
  const { value, low, high } = figure as { value: number; low: number; high: number };
  const [factor] = unitFor(kind, value);
  const same = signed(value / factor);
  if (signed(low / factor) === same && signed(high / factor) === same) {
    return shown;
  }
  return `${shown} (${formatSpan(figure, kind)})`;
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

/** What a page of runs says of a run that is a distributed job (all null for a run that is none). */
export interface IJobCounts {
  job?: string | null;
  job_block?: number | null;
  job_world_size?: number | null;
  job_parts?: number | null;
  job_nodes?: number | null;
}

/**
 * What a distributed job's one run is made of, as `notebook-carbon runs` says it: "4 ranks · 2 nodes",
 * "3 of 4 ranks · 2 nodes" while ranks are missing, "driver + 4 parts · 1 node" for the run of a
 * notebook cell that drives the job (its own part, and every part of the ranks that joined it);
 * '' for a run that is no job.
 */
export function describeJob(run: IJobCounts | null | undefined): string {
  if (!run?.job) {
    return '';
  }
  const parts = run.job_parts ?? 0;
  const nodes = plural(run.job_nodes ?? 0, 'node');
  if (run.job_block === null || run.job_block === undefined) {
    return `driver + ${plural(Math.max(parts - 1, 0), 'part')} \u00b7 ${nodes}`;
  }
  const size = run.job_world_size;
  const ranks = size && parts < size ? `${parts} of ${size} ranks` : plural(parts, 'rank');
  return `${ranks} \u00b7 ${nodes}`;
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

/** The statement's formats the sidebar downloads: the server's format, its label, file suffix and type. */
export const STATEMENT_FORMATS = [
  { format: 'md', label: 'Markdown', suffix: 'md', type: 'text/markdown' },
  { format: 'latex', label: 'LaTeX document', suffix: 'tex', type: 'application/x-latex' },
  { format: 'latex-fragment', label: 'LaTeX fragment', suffix: 'tex', type: 'application/x-latex' },
  { format: 'bib', label: 'BibTeX sources', suffix: 'bib', type: 'application/x-bibtex' },
  { format: 'json', label: 'JSON', suffix: 'json', type: 'application/json' }
] as const;

/** One of `STATEMENT_FORMATS`' formats. */
export type StatementFormat = (typeof STATEMENT_FORMATS)[number]['format'];

/**
 * How long ago `epochSeconds` was, before `nowMs`: "12 s ago", "5 min ago", "3 h ago", "2 d ago"
 * (what the dashboard says too); MISSING when unknown.
 */
export function formatAgo(epochSeconds: number | null | undefined, nowMs: number): string {
  if (epochSeconds === null || epochSeconds === undefined || !Number.isFinite(epochSeconds)) {
    return MISSING;
  }
  const seconds = Math.max(nowMs / 1000 - epochSeconds, 0);
  for (const [size, unit] of [
    [86400, 'd'],
    [3600, 'h'],
    [60, 'min']
  ] as [number, string][]) {
    if (seconds >= size) {
      return `${Math.floor(seconds / size)} ${unit} ago`;
    }
  }
  return `${Math.floor(seconds)} s ago`;
}

/** A file name for the statement of `project` (and `notebook`) in `format`, safe on every OS. */
export function statementFilename(
  project: string | null | undefined,
  notebook: string | null | undefined,
  format: StatementFormat
): string {
  const parts = ['carbon-statement', project, notebook ? notebook.replace(/\.ipynb$/, '') : null];
  const stem = parts
    .filter((part): part is string => !!part)
    .join('-')
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/_+/g, '_');
  const found = STATEMENT_FORMATS.find(f => f.format === format);
  const fragment = format === 'latex-fragment' ? '-fragment' : '';
  return `${stem}${fragment}.${found ? found.suffix : 'txt'}`;
}

/** A query string of the parameters that are set, e.g. "?project=p&notebook=a%20b.ipynb". */
export function queryString(params: Record<string, string | number | null | undefined>): string {
  const pairs = Object.entries(params)
    .filter(([, value]) => value !== null && value !== undefined && value !== '')
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`);
  return pairs.length ? `?${pairs.join('&')}` : '';
}
