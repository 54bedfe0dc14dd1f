/**
 * The sidebar panel: a header with the project and when it was read, the statement's downloads,
 * the project's totals with a small chart of its cumulative emissions, the current notebook's
 * total, the latest runs (a distributed job is one run, its ranks and nodes said), sweeps, the
 * costliest results weighed against their energy, and redundant runs; a run links to the notebook cell it ran in, a redundant run to the cell it
 * repeats. Every string from the server is set as text (textContent), never parsed as HTML: run,
 * sweep and notebook names are user input. Figures never wrap: each is one line, its range on a
 * second line and on hover.
 */
import { downloadIcon, refreshIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';
import { Message } from '@lumino/messaging';

import {
  ApiError,
  fetchHistory,
  fetchRedundant,
  fetchRuns,
  fetchStatement,
  fetchSummary,
  fetchSweeps,
  fetchTradeoffs,
  IRedundant,
  IRun,
  IRuns,
  ISummary,
  ISweep
} from './api';
import { describeCell, ICellRef } from './links';
import { emissionsChart, IHistory } from './chart';
import { ITradeoff, tradeoffItem } from './tradeoffs';
import {
  describeJob,
  describeRepeat,
  formatAgo,
  formatEmissions,
  formatEnergy,
  formatPercent,
  formatRatio,
  formatSpan,
  formatStatuses,
  formatWater,
  IRanged,
  Kind,
  MISSING,
  plural,
  STATEMENT_FORMATS,
  StatementFormat,
  statementFilename
} from './format';

/** How many sweeps and redundant runs the panel lists; the statement has all of them. */
const LISTED = 10;

/** How many result sweeps the panel weighs against their energy, the costliest first. */
const TRADEOFFS = 3;

/** How many of the latest runs the panel lists. */
const LATEST = 5;

/** The spans of time the chart of cumulative emissions is drawn from: about one per 4 px. */
const CHART_SPANS = 60;

/** Opens a run's notebook at its cell; resolves when done (it tells the user what went wrong). */
export type CellOpener = (ref: ICellRef) => Promise<void>;

/** A burst of executed cells (Run All) is one refresh, this long after the last of them. */
const SETTLE_MS = 1500;

/** How often "updated 12 s ago" is said again (a clock, not a read of the registry). */
const CLOCK_MS = 15000;

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** A row: its label, and its value on one line; `range`, when given, on a second line and on hover. */
function row(label: string, value: string, title?: string, range?: string): HTMLElement {
  const line = element('div', 'jp-NotebookCarbon-row');
  line.append(element('span', 'jp-NotebookCarbon-label', label), element('span', 'jp-NotebookCarbon-value', value));
  if (range) {
    line.append(element('span', 'jp-NotebookCarbon-range', range));
  }
  line.title = [title, range ? `range ${range}` : ''].filter(Boolean).join('; ');
  return line;
}

/** A row of a ranged figure (energy, emissions): the value, and its range below it. */
function ranged(label: string, figure: IRanged | null | undefined, kind: Kind, title: string): HTMLElement {
  const value = kind === 'energy' ? formatEnergy(figure?.value) : formatEmissions(figure?.value);
  const range = figure && (figure as { lower_bound?: boolean }).lower_bound
    ? `at least ${kind === 'energy' ? formatEnergy(figure.low) : formatEmissions(figure.low)}`
    : formatSpan(figure, kind);
  return row(label, value, title, range === value ? undefined : range);
}

function section(title: string): HTMLElement {
  const part = element('section', 'jp-NotebookCarbon-section');
  part.append(element('h3', 'jp-NotebookCarbon-heading', title));
  return part;
}

/**
 * `text`, a link to the notebook cell of `ref` when the server can open its notebook (a button
 * styled as a link: it runs a command, it goes to no address), else plain text saying why not.
 */
function cellLink(className: string, text: string, ref: ICellRef, notebook: string | null, open: CellOpener): HTMLElement {
  if (!ref.path) {
    const plain = element('div', className, text);
    plain.title = describeCell(ref, notebook);
    return plain;
  }
  const line = element('div', className);
  const link = element('button', 'jp-NotebookCarbon-link', text);
  link.title = describeCell(ref, notebook);
  link.addEventListener('click', () => void open(ref));
  line.append(link);
  return line;
}

/** One of the latest runs: its id and name (a link to its cell); its status, energy, emissions, when and, for a job, its ranks. */
function runItem(run: IRun, now: number, open: CellOpener): HTMLElement {
  const item = element('li', `jp-NotebookCarbon-item jp-NotebookCarbon-status-${run.status}`);
  const job = describeJob(run);
  item.append(
    cellLink('jp-NotebookCarbon-name', `#${run.id}${run.name ? ` ${run.name}` : ''}`, run, run.notebook, open),
    element(
      'div',
      'jp-NotebookCarbon-detail',
      [run.status, formatEnergy(run.energy_j), formatEmissions(run.emissions_g), job, formatAgo(run.started_at, now)]
        .filter(Boolean)
        .join(' \u00b7 ')
    )
  );
  const started = run.started_at ? new Date(run.started_at * 1000).toISOString().slice(0, 19).replace('T', ' ') : '';
  item.title = [
    started ? `started ${started} UTC` : '',
    job ? `distributed job ${run.job} on ${run.host ?? 'its nodes'}: one run of its ranks, each device counted once` : ''
  ]
    .filter(Boolean)
    .join('; ');
  return item;
}

/** A button with a JupyterLab icon, styled as the toolbar's. */
function iconButton(icon: typeof refreshIcon, label: string, title: string): HTMLButtonElement {
  const button = element('button', 'jp-Button jp-mod-minimal jp-NotebookCarbon-button');
  button.title = title;
  button.append(icon.element({ tag: 'span', className: 'jp-NotebookCarbon-icon' }));
  if (label) {
    button.append(element('span', 'jp-NotebookCarbon-button-label', label));
  }
  return button;
}

export class CarbonPanel extends Widget {
  /**
   * `notebookPath` says which notebook is current (its server path, as kernels record it);
   * `openCell` opens a run's notebook at its cell.
   */
  constructor(
    private readonly notebookPath: () => string | null,
    private readonly openCell: CellOpener
  ) {
    super();
    this.addClass('jp-NotebookCarbon');
    this.title.caption = 'Notebook carbon';
    const header = element('header', 'jp-NotebookCarbon-header');
    const titles = element('div', 'jp-NotebookCarbon-titles');
    titles.append(this.heading, this.state);
    const refresh = iconButton(refreshIcon, '', 'Read the registry again');
    refresh.classList.add('jp-NotebookCarbon-refresh');
    refresh.addEventListener('click', () => void this.refresh());
    header.append(titles, refresh);
    this.node.append(header, this.downloads(), this.status, this.body);
  }

  /** Refresh now if shown, else on the next show. */
  invalidate(): void {
    this.stale = true;
    if (this.isVisible) {
      void this.refresh();
    }
  }

  /** A cell finished in the current notebook: refresh once the burst settles. */
  cellExecuted(): void {
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => this.invalidate(), SETTLE_MS);
  }

  async refresh(): Promise<void> {
    const generation = ++this.generation;
    this.stale = false;
    const notebook = this.notebookPath();
    this.node.classList.add('jp-mod-loading');
    this.state.textContent = 'Reading the registry\u2026';
    try {
      const [project, current, latest, sweeps, redundant, history, tradeoffs] = await Promise.all([
        fetchSummary(),
        notebook ? fetchSummary(notebook) : Promise.resolve(null),
        fetchRuns(LATEST),
        fetchSweeps(),
        fetchRedundant(LISTED),
        fetchHistory(CHART_SPANS),
        // a server extension older than the sidebar (not restarted since an upgrade) has no such
        // endpoint: that section says so, the rest of the panel shows
        fetchTradeoffs(TRADEOFFS).catch((error: unknown) => (error instanceof Error ? error : new Error(String(error))))
      ]);
      if (generation !== this.generation) {
        return; // a later refresh started meanwhile: its answer is the one to show
      }
      this.render(project, notebook, current, latest, sweeps, redundant, history, tradeoffs);
      this.status.replaceChildren();
      this.readAt = Date.now();
    } catch (error) {
      if (generation === this.generation) {
        this.status.replaceChildren(...this.explain(error));
        this.readAt = null;
      }
    } finally {
      if (generation === this.generation) {
        this.node.classList.remove('jp-mod-loading');
        this.tell();
      }
    }
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.clock = window.setInterval(() => this.tell(), CLOCK_MS);
    if (this.stale || !this.body.hasChildNodes()) {
      void this.refresh();
    }
  }

  protected onAfterHide(msg: Message): void {
    window.clearInterval(this.clock);
    super.onAfterHide(msg);
  }

  protected onBeforeDetach(msg: Message): void {
    window.clearTimeout(this.timer);
    window.clearInterval(this.clock);
    super.onBeforeDetach(msg);
  }

  /** The header's second line: when the figures were read, or that they could not be. */
  private tell(): void {
    if (this.node.classList.contains('jp-mod-loading')) {
      return;
    }
    this.state.textContent =
      this.readAt === null ? 'not read' : `updated ${formatAgo(this.readAt / 1000, Date.now())}`;
  }

  /** What went wrong, and what to do about it. */
  private explain(error: unknown): HTMLElement[] {
    const what = element('p', 'jp-NotebookCarbon-error');
    const todo = element('p', 'jp-NotebookCarbon-note');
    if (error instanceof ApiError && error.status === 404) {
      what.textContent = 'The notebook-carbon server extension is not enabled in this Jupyter server.';
      todo.textContent =
        'Install notebook-carbon into the environment JupyterLab runs from, check ' +
        '`jupyter server extension list`, then restart JupyterLab.';
    } else {
      what.textContent = `Could not read the registry: ${error instanceof Error ? error.message : String(error)}`;
      todo.textContent = 'Check the registry the server reads (NOTEBOOK_CARBON_REGISTRY), then refresh.';
    }
    return [what, todo];
  }

  private render(
    project: ISummary,
    notebook: string | null,
    current: ISummary | null,
    latest: IRuns,
    sweeps: ISweep[],
    redundant: IRedundant,
    history: IHistory,
    tradeoffs: ITradeoff[] | Error
  ): void {
    this.project = project.project;
    this.heading.textContent = `Project ${project.project}`;
    this.heading.title = this.heading.textContent;
    const totals = project.totals;
    const dev = project.development;
    const now = Date.now();

    const head = section('Totals');
    if (!project.runs) {
      head.append(
        element(
          'p',
          'jp-NotebookCarbon-note jp-NotebookCarbon-empty',
          'No runs recorded yet. In a notebook, run %load_ext notebook_carbon, then put %%carbon on a cell: ' +
            'its run appears here when the cell ends.'
        )
      );
    } else {
      const chart = emissionsChart(history, now);
      if (chart) {
        head.append(chart);
      }
      head.append(
        row('Runs', `${project.runs}`, formatStatuses(project.statuses)),
        ranged('Energy', totals.energy_j, 'energy', 'IT energy'),
        ranged('Emissions', totals.emissions_g, 'emissions', 'operational: energy x PUE x grid intensity'),
        ranged('Embodied', totals.embodied_g, 'emissions', 'hardware manufacture, amortised'),
        ranged('Total', totals.total_g, 'emissions', 'operational + embodied'),
        row('Water', totals.water_l ? formatWater(totals.water_l.value) : MISSING, totals.water_l?.basis),
        row(
          'Overhead',
          formatRatio(dev.ratio),
          `development overhead: the energy of all runs over that of the results (${plural(dev.selected_runs, 'selected run')})`
        ),
        row('Failed', `${dev.failed_runs}`, `${formatPercent(dev.failed_share)} of the energy`),
        row('Redundant', `${dev.redundant_runs}`, `${formatPercent(dev.redundant_share)} of the energy`)
      );
    }

    const here = section(notebook ? `This notebook: ${notebook}` : 'This notebook');
    if (!notebook || !current) {
      here.append(element('p', 'jp-NotebookCarbon-note', 'Open a notebook to see its total.'));
    } else if (!current.runs) {
      here.append(element('p', 'jp-NotebookCarbon-note', 'No metered runs of this notebook yet.'));
    } else {
      here.append(
        row('Runs', String(current.runs)),
        ranged('Energy', current.totals.energy_j, 'energy', 'IT energy'),
        ranged('Emissions', current.totals.emissions_g, 'emissions', 'operational'),
        ranged('Total', current.totals.total_g, 'emissions', 'operational + embodied')
      );
    }

    const latestPart = section(`Latest runs (${latest.total})`);
    if (!latest.runs.length) {
      latestPart.append(element('p', 'jp-NotebookCarbon-note', 'No runs yet.'));
    }
    const latestList = element('ul', 'jp-NotebookCarbon-list');
    for (const run of latest.runs) {
      latestList.append(runItem(run, now, this.openCell));
    }
    latestPart.append(latestList);

    const sweepPart = section(`Sweeps (${sweeps.length})`);
    if (!sweeps.length) {
      sweepPart.append(element('p', 'jp-NotebookCarbon-note', 'No sweeps.'));
    }
    const sweepList = element('ul', 'jp-NotebookCarbon-list');
    for (const sweep of sweeps.slice(0, LISTED)) {
      const item = element('li', 'jp-NotebookCarbon-item');
      item.append(
        element('div', 'jp-NotebookCarbon-name', sweep.label || sweep.key),
        element(
          'div',
          'jp-NotebookCarbon-detail',
          `${plural(sweep.runs, 'run')} \u00b7 ${formatEnergy(sweep.energy_j)} \u00b7 ` +
            `${formatEmissions(sweep.emissions_g)} \u00b7 overhead ${formatRatio(sweep.overhead_ratio)}`
        )
      );
      sweepList.append(item);
    }
    sweepPart.append(sweepList);
    if (sweeps.length > LISTED) {
      sweepPart.append(element('p', 'jp-NotebookCarbon-note', `and ${sweeps.length - LISTED} more`));
    }

    const tradeoffPart = section('Results against energy');
    if (tradeoffs instanceof Error) {
      tradeoffPart.append(
        element('p', 'jp-NotebookCarbon-note', `Could not be read: ${tradeoffs.message} (restart JupyterLab after an upgrade).`)
      );
    } else if (!tradeoffs.length) {
      tradeoffPart.append(
        element(
          'p',
          'jp-NotebookCarbon-note',
          'No result sweep logged a metric. %carbon log acc=0.93 in a metered cell records one; ' +
            'each result is then weighed against the cheapest run about as good.'
        )
      );
    } else {
      const tradeoffList = element('ul', 'jp-NotebookCarbon-list');
      tradeoffList.append(...tradeoffs.map(tradeoffItem));
      tradeoffPart.append(tradeoffList);
    }

    const redundantPart = section(`Redundant runs (${redundant.total})`);
    if (redundant.total) {
      redundantPart.append(
        row('Wasted', formatEnergy(redundant.energy_j), formatEmissions(redundant.emissions_g))
      );
    } else {
      redundantPart.append(element('p', 'jp-NotebookCarbon-note', 'No redundant runs.'));
    }
    const redundantList = element('ul', 'jp-NotebookCarbon-list');
    for (const run of redundant.runs) {
      const item = element('li', 'jp-NotebookCarbon-item jp-NotebookCarbon-redundant');
      const detail = [formatEnergy(run.energy_j), describeJob(run)].filter(Boolean).join(' \u00b7 ');
      const earlier = run.repeats;
      item.append(
        cellLink('jp-NotebookCarbon-name', `#${run.id}${run.name ? ` ${run.name}` : ''}`, run, run.notebook, this.openCell),
        earlier?.status // (a deleted earlier run has only its id: no cell to open)
          ? cellLink('jp-NotebookCarbon-repeats', describeRepeat(earlier), earlier, earlier.notebook, this.openCell)
          : element('div', 'jp-NotebookCarbon-repeats', describeRepeat(earlier)),
        element('div', 'jp-NotebookCarbon-detail', detail)
      );
      redundantList.append(item);
    }
    redundantPart.append(redundantList);
    if (redundant.total > redundant.runs.length) {
      redundantPart.append(
        element('p', 'jp-NotebookCarbon-note', `and ${redundant.total - redundant.runs.length} more`)
      );
    }

    this.body.replaceChildren(head, here, latestPart, sweepPart, tradeoffPart, redundantPart);
  }

  /** "Download statement" in the format chosen: the whole project's, like the totals. */
  private downloads(): HTMLElement {
    const bar = element('div', 'jp-NotebookCarbon-downloads');
    const wrapper = element('div', 'jp-select-wrapper jp-NotebookCarbon-format');
    const choice = element('select', 'jp-mod-styled');
    choice.title = 'The statement\u2019s format';
    for (const { format, label } of STATEMENT_FORMATS) {
      const option = element('option', '', label);
      option.value = format;
      choice.append(option);
    }
    wrapper.append(choice);
    const button = iconButton(downloadIcon, 'Statement', 'Download the impact statement in the format chosen');
    button.classList.add('jp-NotebookCarbon-download');
    button.addEventListener('click', () => void this.download(choice.value as StatementFormat));
    bar.append(button, wrapper);
    return bar;
  }

  private async download(format: StatementFormat): Promise<void> {
    try {
      const text = await fetchStatement(format);
      const found = STATEMENT_FORMATS.find(f => f.format === format);
      const url = URL.createObjectURL(new Blob([text], { type: found ? found.type : 'text/plain' }));
      const link = document.createElement('a');
      link.href = url;
      link.download = statementFilename(this.project, null, format);
      document.body.append(link);
      link.click();
      link.remove();
      window.setTimeout(() => URL.revokeObjectURL(url), 0);
    } catch (error) {
      this.status.replaceChildren(...this.explain(error));
    }
  }

  private readonly heading = element('div', 'jp-NotebookCarbon-title', 'Notebook carbon');
  private readonly state = element('div', 'jp-NotebookCarbon-state', 'not read yet');
  private readonly status = element('div', 'jp-NotebookCarbon-status');
  private readonly body = element('div', 'jp-NotebookCarbon-body');
  private project: string | null = null;
  private readAt: number | null = null;
  private generation = 0;
  private stale = true;
  private timer = 0;
  private clock = 0;
}
