// The pure parts of the sidebar's chart of a sweep's metric against energy.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import { describeDot, HEIGHT, ITradeoff, layout, WIDTH } from '../src/tradeoffs';

function tradeoff(direction: 'higher' | 'lower', points: [number, number, number][], front: number[]): ITradeoff {
  return {
    sweep: 'k',
    label: 'lr',
    metric: direction === 'higher' ? 'acc' : 'loss',
    direction,
    tolerance: 0.01,
    runs: points.length,
    selected: { run_id: 4, energy_j: 4000, value: 0.93 },
    cheapest: { run_id: 2, energy_j: 2000, value: 0.925 },
    energy_share: 0.5,
    front,
    marked: false,
    points,
    text: 'lr: ...'
  };
}

// four runs, each with more energy; run 3 is beaten by run 2 on both (more energy, lower accuracy)
const SWEEP: [number, number, number][] = [
  [1, 1000, 0.8],
  [2, 2000, 0.925],
  [3, 3000, 0.9],
  [4, 4000, 0.93]
];

test('layout puts the least energy left and the better metric up, the marked runs drawn last', () => {
  const { dots, front } = layout(tradeoff('higher', SWEEP, [1, 2, 4]));
  const at = new Map(dots.map(dot => [dot.run, dot]));
  assert.deepEqual(
    dots.map(dot => dot.kind),
    ['other', 'front', 'cheapest', 'selected']
  );
  assert.equal(at.get(3)!.kind, 'other');
  assert.ok(at.get(1)!.x < at.get(2)!.x && at.get(2)!.x < at.get(3)!.x && at.get(3)!.x < at.get(4)!.x);
  assert.ok(at.get(4)!.y < at.get(2)!.y && at.get(2)!.y < at.get(3)!.y && at.get(3)!.y < at.get(1)!.y); // up is better
  for (const dot of dots) {
    assert.ok(dot.x >= 0 && dot.x <= WIDTH && dot.y >= 0 && dot.y <= HEIGHT, JSON.stringify(dot));
  }
  // the front is a step line through runs 1, 2 and 4, by energy; run 3 is not on it
  assert.equal(front.split(/[MHV]/).filter(Boolean).length, 5);
  assert.ok(front.startsWith(`M${at.get(1)!.x.toFixed(2)},${at.get(1)!.y.toFixed(2)}`));
  assert.ok(front.endsWith(`H${at.get(4)!.x.toFixed(2)} V${at.get(4)!.y.toFixed(2)}`));
});

test('energy is on a logarithmic axis when every run used some, else a linear one', () => {
  const tenfold: [number, number, number][] = [
    [1, 10, 0.5],
    [2, 100, 0.6],
    [3, 1000, 0.7]
  ];
  const x = layout(tradeoff('higher', tenfold, [1, 2, 3])).dots.sort((a, b) => a.run - b.run).map(dot => dot.x);
  assert.ok(Math.abs(x[1] - x[0] - (x[2] - x[1])) < 1e-9); // equal steps for equal ratios
  const zero: [number, number, number][] = [
    [1, 0, 0.5],
    [2, 50, 0.6],
    [3, 100, 0.7]
  ];
  const linear = layout(tradeoff('higher', zero, [1, 2, 3])).dots.sort((a, b) => a.run - b.run).map(dot => dot.x);
  assert.ok(Math.abs(linear[1] - linear[0] - (linear[2] - linear[1])) < 1e-9);
});

test('a metric where lower is better has its lowest value at the top', () => {
  const losses: [number, number, number][] = [
    [1, 1000, 0.5],
    [2, 2000, 0.2],
    [4, 4000, 0.1]
  ];
  const at = new Map(layout(tradeoff('lower', losses, [1, 2, 4])).dots.map(dot => [dot.run, dot]));
  assert.ok(at.get(4)!.y < at.get(2)!.y && at.get(2)!.y < at.get(1)!.y);
});

test('one value or one energy is drawn in the middle; no finite point draws nothing', () => {
  const same: [number, number, number][] = [
    [2, 2000, 0.9],
    [4, 2000, 0.9]
  ];
  const { dots, front } = layout(tradeoff('higher', same, [2, 4]));
  assert.deepEqual(
    dots.map(dot => [dot.x, dot.y]),
    [
      [WIDTH / 2, HEIGHT / 2],
      [WIDTH / 2, HEIGHT / 2]
    ]
  );
  assert.ok(front.length > 0);
  assert.deepEqual(layout(tradeoff('higher', [[1, Number.NaN, 0.5]], [])), { dots: [], front: '' });
  assert.equal(layout(tradeoff('higher', [[1, 5, 0.5]], [1])).front, ''); // one run is no line
});

test('a dot says its run, energy and value', () => {
  const t = tradeoff('higher', SWEEP, [1, 2, 4]);
  assert.equal(describeDot(t, [4, 500, 0.93], 'selected'), 'run 4 (selected): 500 J, acc 0.93');
  assert.equal(describeDot(t, [3, 7200, 0.9], 'other'), 'run 3: 2 Wh, acc 0.9');
});
