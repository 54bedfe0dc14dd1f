/**
 * The sidebar's small chart of a project's cumulative operational emissions (the server's
 * `history`: the runs summed over equal spans of time). Drawn as SVG elements made one by one,
 * never parsed from text; its colours are JupyterLab's variables (style/index.css), so it follows
 * the theme. Its width is the panel's; its figures are said in text beside it, and in its title.
 */
import { formatEmissions } from './format';

const SVG = 'http://www.w3.org/2000/svg';

/** What the history endpoint answers. */
export interface IHistory {
  project: string;
  first_at: number | null;
  last_at: number | null;
  points: { at: number; emissions_g: number; runs: number }[];
}

/** The width and height the chart's coordinates are drawn in (it is stretched to the panel's width). */
const WIDTH = 200;
const HEIGHT = 40;

/** A day, as the dates under the chart are said: "3 Dec" (this year), "3 Dec 2025" (another). */
export function formatDay(epochSeconds: number, nowMs: number): string {
  const day = new Date(epochSeconds * 1000);
  const sameYear = day.getUTCFullYear() === new Date(nowMs).getUTCFullYear();
  return day.toLocaleDateString('en-GB', {
    day: 'numeric',
    month: 'short',
    year: sameYear ? undefined : 'numeric',
    timeZone: 'UTC'
  });
}

/**
 * The chart's line, in its coordinates (the largest total at the top): from 0 at the first run's
 * start, a step up to each span's cumulative total at the span's end, level between them (a run
 * after a long pause is a step after a level stretch, not a slope). '' without runs.
 */
export function chartPath(history: IHistory): string {
  const { first_at: first, last_at: last, points } = history;
  if (first === null || last === null || !points.length) {
    return '';
  }
  const top = Math.max(...points.map(point => point.emissions_g), 0);
  const x = (at: number) => (last > first ? ((at - first) / (last - first)) * WIDTH : WIDTH);
  const y = (grams: number) => (top > 0 ? HEIGHT - (grams / top) * (HEIGHT - 2) : HEIGHT);
  const steps = points.map(point => `H${x(point.at).toFixed(2)} V${y(point.emissions_g).toFixed(2)}`);
  return `M0,${HEIGHT} ${steps.join(' ')}`;
}

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attributes: Record<string, string>): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) {
    node.setAttribute(name, value);
  }
  return node;
}

/** The chart, with the first day under its left end and the total under its right; null without runs. */
export function emissionsChart(history: IHistory, nowMs: number): HTMLElement | null {
  const line = chartPath(history);
  if (!line || history.first_at === null || history.last_at === null) {
    return null;
  }
  const total = history.points[history.points.length - 1].emissions_g;
  const from = formatDay(history.first_at, nowMs);
  const to = formatDay(history.last_at, nowMs);
  const figure = document.createElement('figure');
  figure.className = 'jp-NotebookCarbon-chart';
  const said = `Cumulative operational emissions: ${formatEmissions(total)} from ${from} to ${to}`;
  figure.title = said;
  const drawing = svg('svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    preserveAspectRatio: 'none',
    role: 'img',
    'aria-label': said
  });
  drawing.append(
    svg('path', { d: `${line} L${WIDTH},${HEIGHT} Z`, class: 'jp-NotebookCarbon-chart-area' }),
    svg('path', { d: line, class: 'jp-NotebookCarbon-chart-line', 'vector-effect': 'non-scaling-stroke' })
  );
  const caption = document.createElement('figcaption');
  caption.className = 'jp-NotebookCarbon-chart-caption';
  const left = document.createElement('span');
  left.textContent = from === to ? from : `since ${from}`;
  const right = document.createElement('span');
  right.textContent = formatEmissions(total);
  caption.append(left, right);
  figure.append(drawing, caption);
  return figure;
}
