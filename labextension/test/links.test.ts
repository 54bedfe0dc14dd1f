// The pure parts of a run's link to its cell and of the chart of cumulative emissions.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import { chartPath, formatDay, IHistory } from '../src/chart';
import { describeCell, findCell, hasCell, ICellInfo } from '../src/links';

const CELLS: ICellInfo[] = [
  { id: 'md-1', type: 'markdown', executionCount: null },
  { id: 'a1', type: 'code', executionCount: 3 },
  { id: 'b2', type: 'code', executionCount: 4 },
  { id: 'c3', type: 'code', executionCount: 4 }, // run twice in another session: In [4] twice
  { id: 'raw', type: 'raw', executionCount: null }
];

test('findCell finds a cell by its id, else by a single In [n]', () => {
  assert.equal(findCell(CELLS, { path: 'a.ipynb', cell_id: 'b2', execution_count: 3 }), 2); // the id wins
  assert.equal(findCell(CELLS, { path: 'a.ipynb', cell_id: 'gone', execution_count: 3 }), -1); // never a guess
  assert.equal(findCell(CELLS, { path: 'a.ipynb', cell_id: null, execution_count: 3 }), 1);
  assert.equal(findCell(CELLS, { path: 'a.ipynb', execution_count: 4 }), -1); // two cells are In [4]
  assert.equal(findCell(CELLS, { path: 'a.ipynb', execution_count: 9 }), -1);
  assert.equal(findCell(CELLS, { path: 'a.ipynb' }), -1);
  assert.equal(findCell([], { path: 'a.ipynb', cell_id: 'a1' }), -1);
});

test('hasCell tells a run that recorded its cell', () => {
  assert.equal(hasCell({ path: 'a.ipynb', cell_id: 'a1' }), true);
  assert.equal(hasCell({ path: 'a.ipynb', execution_count: 0 }), true);
  assert.equal(hasCell({ path: 'a.ipynb', cell_id: null, execution_count: null }), false);
});

test('describeCell says where a link goes, or why there is none', () => {
  assert.equal(describeCell({ path: 'sub/a.ipynb', cell_id: 'a1' }, '/srv/sub/a.ipynb'), 'Open sub/a.ipynb at the cell it ran in');
  assert.equal(
    describeCell({ path: 'a.ipynb', cell_id: null, execution_count: 7 }, null),
    'Open a.ipynb at the cell numbered In [7], if it has not run again since'
  );
  assert.equal(describeCell({ path: 'a.ipynb' }, null), 'Open a.ipynb at its top (the run recorded no cell)');
  assert.equal(
    describeCell({ path: null }, '/home/me/b.ipynb'),
    "its notebook /home/me/b.ipynb is outside the Jupyter server's root: open it there"
  );
  assert.equal(describeCell({ path: null }, null), 'recorded outside a notebook');
});

function history(points: [number, number][], first: number | null = points.length ? points[0][0] - 10 : null): IHistory {
  const last = points.length ? points[points.length - 1][0] : null;
  return { project: 'p', first_at: first, last_at: last, points: points.map(([at, g], i) => ({ at, emissions_g: g, runs: i + 1 })) };
}

test('chartPath steps up from 0 at the first start to the total at the last, the total at the top', () => {
  assert.equal(chartPath(history([])), '');
  assert.equal(chartPath(history([[110, 2], [200, 8]], 100)), 'M0,40 H20.00 V30.50 H200.00 V2.00');
  assert.equal(chartPath(history([[100, 5]], 100)), 'M0,40 H200.00 V2.00'); // one moment: one step, at the right
  assert.equal(chartPath(history([[100, 0]], 100)), 'M0,40 H200.00 V40.00'); // nothing emitted: level
});

test('formatDay says the day in UTC, with the year only when it is not this one', () => {
  const now = Date.UTC(2026, 11, 6, 12);
  assert.equal(formatDay(Date.UTC(2026, 2, 3, 23, 59) / 1000, now), '3 Mar');
  assert.equal(formatDay(Date.UTC(2025, 11, 31, 23) / 1000, now), '31 Dec 2025');
});
