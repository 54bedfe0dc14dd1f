// Table-driven tests of the pure helpers: `jlpm test` compiles them with tsc and runs node --test.
// The figures are checked against the package's own table of cases, which tests/test_units.py
// checks notebook_carbon/units.py against: the sidebar shows a figure as the rest of the package.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { test } from 'node:test';

import {
  describeJob,
  describeRepeat,
  formatDuration,
  formatEmissions,
  formatEnergy,
  formatMass,
  formatNumber,
  formatPercent,
  formatPower,
  formatRange,
  formatRatio,
  formatSpan,
  formatStatuses,
  formatWater,
  Kind,
  queryString,
  statementFilename,
  formatAgo,
  unitFor
} from '../src/format';

function table<A extends unknown[]>(name: string, fn: (...args: A) => unknown, cases: [A, unknown][]): void {
  test(name, () => {
    for (const [args, expected] of cases) {
      assert.deepEqual(fn(...args), expected, `${name}(${args.map(a => JSON.stringify(a)).join(', ')})`);
    }
  });
}

// compiled to lib-test/test/: the repository's root is three folders up
const CASES_FILE = resolve(__dirname, '..', '..', '..', 'tests', 'data', 'display_cases.json');
const CASES: Record<string, unknown[][]> = JSON.parse(readFileSync(CASES_FILE, 'utf-8'));
const SPECIAL: Record<string, number> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };

type Args = (number | string | null)[];
const range = (fn: typeof formatRange) => (value: number, low: number, high: number, kind: Kind) =>
  fn({ value, low, high }, kind);
const FUNCTIONS: Record<string, (...args: never[]) => unknown> = {
  number: formatNumber,
  energy: formatEnergy,
  mass: formatMass,
  emissions: formatEmissions,
  water: formatWater,
  power: formatPower,
  duration: formatDuration,
  ratio: formatRatio,
  percent: formatPercent,
  unit: (kind: Kind, value: number) => unitFor(kind, value),
  range: range(formatRange),
  span: range(formatSpan)
};

test('the table of display cases covers every formatter and nothing else', () => {
  assert.deepEqual(
    Object.keys(CASES)
      .filter(key => key !== 'about')
      .sort(),
    Object.keys(FUNCTIONS).sort()
  );
});

for (const [name, fn] of Object.entries(FUNCTIONS)) {
  table(
    `${name} follows the display scheme`,
    (...args: Args) => (fn as (...a: Args) => unknown)(...args),
    CASES[name].map(c => {
      const args = c.slice(0, -1).map(a => (typeof a === 'string' && a in SPECIAL ? SPECIAL[a] : a)) as Args;
      return [args, c[c.length - 1]];
    })
  );
}

table('formatRange of a figure without a range', formatRange, [
  [[{ value: 3600 }, 'energy'], '1 Wh'],
  [[null, 'energy'], 'n/a'],
  [[undefined, 'mass'], 'n/a']
]);

table('formatStatuses', formatStatuses, [
  [[{ ok: 3, crashed: 1, failed: 1 }], '3 ok, 1 crashed, 1 failed'],
  [[{ ok: 0 }], ''],
  [[null], '']
]);

table('describeRepeat', describeRepeat, [
  [[{ id: 12, name: 'baseline', status: 'ok' }], 'repeats #12 baseline (ok)'],
  [[{ id: 12, name: null, status: 'failed' }], 'repeats #12 (failed)'],
  [[{ id: 12, name: null, status: null }], 'repeats #12, no longer in the registry'],
  [[null], 'repeats an earlier run']
]);

table('describeJob', describeJob, [
  [[{ job: 'slurm:1234.0', job_block: 1, job_world_size: 4, job_parts: 4, job_nodes: 2 }], '4 ranks \u00b7 2 nodes'],
  [[{ job: 'slurm:1234.0', job_block: 1, job_world_size: 4, job_parts: 3, job_nodes: 2 }], '3 of 4 ranks \u00b7 2 nodes'],
  [[{ job: 'mpi:9', job_block: 2, job_world_size: null, job_parts: 1, job_nodes: 1 }], '1 rank \u00b7 1 node'],
  [[{ job: 'torchelastic:x', job_block: null, job_world_size: 2, job_parts: 3, job_nodes: 1 }], 'driver + 2 parts \u00b7 1 node'],
  [[{ job: null, job_block: null, job_world_size: null, job_parts: null, job_nodes: null }], ''],
  [[{}], ''],
  [[null], '']
]);

table('statementFilename', statementFilename, [
  [['vision', null, 'md'], 'carbon-statement-vision.md'],
  [['vision', 'exp/train model.ipynb', 'latex'], 'carbon-statement-vision-exp_train_model.tex'],
  [['vision', null, 'latex-fragment'], 'carbon-statement-vision-fragment.tex'],
  [['vision', null, 'bib'], 'carbon-statement-vision.bib'],
  [['vision', null, 'json'], 'carbon-statement-vision.json'],
  [[null, null, 'md'], 'carbon-statement.md']
]);

table('formatAgo', formatAgo, [
  [[1000, 1012_000], '12 s ago'],
  [[1000, 1000_000 + 300_000], '5 min ago'],
  [[1000, 1000_000 + 3 * 3600_000 + 5], '3 h ago'],
  [[1000, 1000_000 + 2 * 86400_000], '2 d ago'],
  [[2000, 1000_000], '0 s ago'],
  [[null, 1000_000], 'n/a']
]);

table('queryString', queryString, [
  [[{ project: 'p', notebook: 'a b.ipynb' }], '?project=p&notebook=a%20b.ipynb'],
  [[{ project: null, notebook: undefined, limit: 10, format: '' }], '?limit=10'],
  [[{}], '']
]);
