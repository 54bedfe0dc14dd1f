/**
 * The sidebar's "Results against energy" (the server's `tradeoffs`): for each of the costliest
 * result sweeps whose runs logged a metric, its label, the line `%carbon sweeps` prints for it and a small
 * chart of its runs, metric against energy: each run a dot, the front (the runs no other beats on
 * both) a step line, the selected run and the cheapest run about as good marked. Energy on a
 * logarithmic axis when every run used some (a sweep's runs often differ tenfold), the metric on a
 * linear one, its better end up. Drawn as SVG elements made one by one, its text set as text; its
 * colours are JupyterLab's variables (style/index.css).
 */
import { formatEnergy, formatNumber, formatPercent } from './format';

const SVG = 'http://www.w3.org/2000/svg';

/** A run of a sweep, as the endpoint gives it: its id, its energy (J) and its metric's value. */
export type TradeoffPoint = [number, number, number];

/** One result sweep's trade-off, as the endpoint gives it (`analysis.tradeoffs`). */
export interface ITradeoff {
  sweep: string;
  label: string | null;
  metric: string;
  direction: 'higher' | 'lower';
  tolerance: number;
  runs: number;
  selected: { run_id: number; energy_j: number; value: number };
  cheapest: { run_id: number; energy_j: number; value: number };
  energy_share: number | null;
  front: number[];
  /** Whether the selected run was marked final; else it is the sweep's latest ok run. */
  marked: boolean;
  points: TradeoffPoint[];
  text: string;
}

/** What a dot stands for, its class and its colour. */
export type DotKind = 'selected' | 'cheapest' | 'front' | 'other';

export interface IDot {
  run: number;
  x: number;
  y: number;
  kind: DotKind;
}

/** The chart's coordinates; it keeps this shape at the panel's width. */
export const WIDTH = 200;
export const HEIGHT = 70;
const PAD = 5;

/**
 * The dots (those that matter most last, so drawn on top) and the front's step line (`''` with
 * fewer than two runs on it), in the chart's coordinates: the least energy left, the better
 * metric up, whatever the metric's direction.
 */
export function layout(tradeoff: ITradeoff): { dots: IDot[]; front: string } {
  const points = tradeoff.points.filter(([, energy, value]) => Number.isFinite(energy) && Number.isFinite(value));
  if (!points.length) {
    return { dots: [], front: '' };
  }
  const log = points.every(([, energy]) => energy > 0);
  const ex = (energy: number) => (log ? Math.log10(energy) : energy);
  const xs = points.map(([, energy]) => ex(energy));
  const ys = points.map(([, , value]) => value);
  const [xLow, xHigh] = [Math.min(...xs), Math.max(...xs)];
  const [yLow, yHigh] = [Math.min(...ys), Math.max(...ys)];
  const x = (energy: number) =>
    xHigh > xLow ? PAD + ((ex(energy) - xLow) / (xHigh - xLow)) * (WIDTH - 2 * PAD) : WIDTH / 2;
  const better = tradeoff.direction === 'lower' ? -1 : 1;
  const y = (value: number) =>
    yHigh > yLow
      ? HEIGHT - PAD - ((better * (value - (better > 0 ? yLow : yHigh))) / (yHigh - yLow)) * (HEIGHT - 2 * PAD)
      : HEIGHT / 2;
  const onFront = new Set(tradeoff.front);
  const kindOf = (run: number): DotKind =>
    run === tradeoff.selected.run_id
      ? 'selected'
      : run === tradeoff.cheapest.run_id
        ? 'cheapest'
        : onFront.has(run)
          ? 'front'
          : 'other';
  const order: DotKind[] = ['other', 'front', 'cheapest', 'selected'];
  const dots = points
    .map(([run, energy, value]) => ({ run, x: x(energy), y: y(value), kind: kindOf(run) }))
    .sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));
  const steps = points
    .filter(([run]) => onFront.has(run))
    .sort((a, b) => a[1] - b[1])
    .map(([, energy, value], i) => (i === 0 ? `M${x(energy).toFixed(2)},${y(value).toFixed(2)}` : `H${x(energy).toFixed(2)} V${y(value).toFixed(2)}`));
  return { dots, front: steps.length > 1 ? steps.join(' ') : '' };
}

/** A dot's hover text: `run 12 (selected): 1.2 kJ, acc 0.93`. */
export function describeDot(tradeoff: ITradeoff, point: TradeoffPoint, kind: DotKind): string {
  const said = { selected: ' (selected)', cheapest: ' (cheapest within tolerance)', front: ' (on the front)', other: '' };
  return `run ${point[0]}${said[kind]}: ${formatEnergy(point[1])}, ${tradeoff.metric} ${formatNumber(point[2])}`;
}

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attributes: Record<string, string>): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) {
    node.setAttribute(name, value);
  }
  return node;
}

/** One sweep: its line, its chart, and under the chart the energy it spans and which way is better. */
export function tradeoffItem(tradeoff: ITradeoff): HTMLElement {
  const item = document.createElement('li');
  item.className = 'jp-NotebookCarbon-item jp-NotebookCarbon-tradeoff';
  item.dataset.sweep = tradeoff.sweep;
  const name = document.createElement('div');
  name.className = 'jp-NotebookCarbon-name';
  name.textContent = tradeoff.label || tradeoff.sweep;
  const text = document.createElement('div');
  text.className = 'jp-NotebookCarbon-detail jp-NotebookCarbon-tradeoff-text';
  text.textContent = tradeoff.text;
  item.append(name, text);
  const { dots, front } = layout(tradeoff);
  if (!dots.length) {
    return item;
  }
  const figure = document.createElement('figure');
  figure.className = 'jp-NotebookCarbon-chart jp-NotebookCarbon-pareto';
  const said =
    `${tradeoff.metric} (${tradeoff.direction} is better, up) against energy (right), ${tradeoff.runs} runs; ` +
    `the cheapest within ${formatPercent(tradeoff.tolerance)} of the selected run used ${formatPercent(tradeoff.energy_share)} of its energy`;
  figure.title = said;
  const drawing = svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-label': said });
  drawing.append(svg('rect', { x: '0', y: '0', width: `${WIDTH}`, height: `${HEIGHT}`, class: 'jp-NotebookCarbon-pareto-frame' }));
  if (front) {
    drawing.append(svg('path', { d: front, class: 'jp-NotebookCarbon-pareto-front' }));
  }
  const byRun = new Map(tradeoff.points.map(point => [point[0], point]));
  for (const dot of dots) {
    const mark = svg('circle', {
      cx: dot.x.toFixed(2),
      cy: dot.y.toFixed(2),
      r: dot.kind === 'selected' || dot.kind === 'cheapest' ? '3.5' : '2.5',
      class: `jp-NotebookCarbon-dot jp-NotebookCarbon-dot-${dot.kind}`
    });
    mark.dataset.run = String(dot.run);
    const title = svg('title', {});
    title.textContent = describeDot(tradeoff, byRun.get(dot.run)!, dot.kind);
    mark.append(title);
    drawing.append(mark);
  }
  const energies = tradeoff.points.map(point => point[1]);
  const caption = document.createElement('figcaption');
  caption.className = 'jp-NotebookCarbon-chart-caption';
  const left = document.createElement('span');
  const values = tradeoff.points.map(point => point[2]);
  // the axis spans the runs' values, however close: the figures say how close they are
  left.textContent = `\u2191 ${tradeoff.direction} ${tradeoff.metric} ${formatNumber(Math.min(...values))}\u2013${formatNumber(Math.max(...values))}`;
  const right = document.createElement('span');
  right.textContent = `energy ${formatEnergy(Math.min(...energies))}\u2013${formatEnergy(Math.max(...energies))} \u2192`;
  caption.append(left, right);
  figure.append(drawing, caption);
  item.append(figure);
  return item;
}
