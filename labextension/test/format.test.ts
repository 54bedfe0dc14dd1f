// Table-driven tests of the pure helpers: `jlpm test` compiles them with tsc and runs node --test.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import {
  describeRepeat,
  formatEnergy,
  formatMass,
  formatRange,
  formatRatio,
  formatShare,
  formatStatuses,
  formatWater,
  MISSING,
  queryString,
  ratio,
  significant,
  statementFilename,
  sumOf
} from '../src/format';

function table<A extends unknown[]>(name: string, fn: (...args: A) => unknown, cases: [A, unknown][]): void {
  test(name, () => {
    for (const [args, expected] of cases) {
      assert.deepEqual(fn(...args), expected, `${name}(${args.map(a => JSON.stringify(a)).join(', ')})`);
    }
  });
}

table('significant', significant, [
  [[0], '0'],
  [[1.23456], '1.23'],
  [[0.00123456], '0.00123'],
  [[12.5], '12.5'],
  [[100], '100'],
  [[12345.6], '12346'],
  [[2.5, 2], '2.5'],
  [[-0.5], '-0.5'],
  [[NaN], MISSING]
]);

table('formatEnergy', formatEnergy, [
  [[0], '0 J'],
  [[1.5], '1.5 J'],
  [[3.6], '1 mWh'],
  [[36], '10 mWh'],
  [[3600], '1 Wh'],
  [[5400], '1.5 Wh'],
  [[3.6e6], '1 kWh'],
  [[7.2e9], '2 MWh'],
  // 999.99 Wh rounds to 1000 Wh: shown in the next unit instead
  [[3599964], '1 kWh'],
  [[null], MISSING],
  [[undefined], MISSING],
  [[Infinity], MISSING]
]);

table('formatMass', formatMass, [
  [[0], '0 g'],
  [[0.0005], '0.5 mg'],
  [[0.25], '250 mg'],
  [[1], '1 g'],
  [[999.9999], '1 kg'],
  [[1234], '1.23 kg'],
  [[2.5e6], '2.5 t'],
  [[null], MISSING]
]);

table('formatWater', formatWater, [
  [[0.0125], '12.5 mL'],
  [[3], '3 L'],
  [[4200], '4.2 m\u00b3']
]);

table('formatRange', (f: Parameters<typeof formatRange>[0]) => formatRange(f, formatEnergy), [
  [[{ value: 3600, low: 3240, high: 4320 }], '1 Wh (900 mWh\u20131.2 Wh)'],
  [[{ value: 3600, low: 3600, high: 3600 }], '1 Wh'],
  [[{ value: 3600 }], '1 Wh'],
  [[{ value: 3600, low: null, high: 7200 }], '1 Wh'],
  [[null], MISSING],
  [[{ value: NaN }], MISSING]
]);

table('formatRatio', formatRatio, [
  [[1], '1\u00d7'],
  [[3.14159], '3.1\u00d7'],
  [[12.4], '12\u00d7'],
  [[null], MISSING]
]);

table('formatShare', formatShare, [
  [[0], '0%'],
  [[0.0005], '<0.1%'],
  [[0.005], '0.5%'],
  [[0.1234], '12.3%'],
  [[1], '100%'],
  [[null], MISSING]
]);

table('ratio', ratio, [
  [[1, 4], 0.25],
  [[1, 0], null],
  [[null, 4], null]
]);

test('sumOf counts missing figures as zero', () => {
  const rows = [{ e: 1 }, { e: null }, { e: 2.5 }, { e: NaN }];
  assert.equal(sumOf(rows, r => r.e), 3.5);
  assert.equal(sumOf([], (r: { e: number }) => r.e), 0);
});

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

table('statementFilename', statementFilename, [
  [['vision', null, 'md'], 'carbon-statement-vision.md'],
  [['vision', 'exp/train model.ipynb', 'latex'], 'carbon-statement-vision-exp_train_model.tex'],
  [[null, null, 'md'], 'carbon-statement.md']
]);

table('queryString', queryString, [
  [[{ project: 'p', notebook: 'a b.ipynb' }], '?project=p&notebook=a%20b.ipynb'],
  [[{ project: null, notebook: undefined, limit: 10, format: '' }], '?limit=10'],
  [[{}], '']
]);
