/**
 * The sidebar panel: project totals, the current notebook's total, the latest runs (a distributed
 * job is one run, its ranks and nodes said), sweeps and redundant runs, and the statement downloads. Every string from the server is set as text (textContent), never
 * parsed as HTML: run, sweep and notebook names are user input.
 */
import { Widget } from '@lumino/widgets';
import { Message } from '@lumino/messaging';

import {
  ApiError,
  fetchRedundant,
  fetchRuns,
  fetchStatement,
  fetchSummary,
  fetchSweeps,
  IRedundant,
  IRun,
  IRuns,
  ISummary,
  ISweep
} from './api';
import {
  describeJob,
  describeRepeat,
  formatEmissions,
  formatEnergy,
  formatPercent,
  formatRange,
  formatRatio,
  formatStatuses,
  formatWater,
  MISSING,
  plural,
  statementFilename
} from './format';

/** How many sweeps and redundant runs the panel lists; the statement has all of them. */
const LISTED = 10;

/** How many of the latest runs the panel lists. */
const LATEST = 5;

/** A burst of executed cells (Run All) is one refresh, this long after the last of them. */
const SETTLE_MS = 1500;

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

function row(label: string, value: string, title?: string): HTMLElement {
  const line = element('div', 'jp-NotebookCarbon-row');
  line.append(element('span', 'jp-NotebookCarbon-label', label), element('span', 'jp-NotebookCarbon-value', value));
  if (title) {
    line.title = title;
  }
  return line;
}

function section(title: string): HTMLElement {
  const part = element('section', 'jp-NotebookCarbon-section');
  part.append(element('h3', 'jp-NotebookCarbon-heading', title));
  return part;
}

/** One of the latest runs: its id and name; its status, energy, emissions and, for a job, its ranks. */
function runItem(run: IRun): HTMLElement {
  const item = element('li', 'jp-NotebookCarbon-item');
  const job = describeJob(run);
  item.append(
    element('div', 'jp-NotebookCarbon-name', `#${run.id}${run.name ? ` ${run.name}` : ''}`),
    element(
      'div',
      'jp-NotebookCarbon-detail',
      [run.status, formatEnergy(run.energy_j), formatEmissions(run.emissions_g), job].filter(Boolean).join(' \u00b7 ')
    )
  );
  if (job) {
    item.title = `distributed job ${run.job} on ${run.host ?? 'its nodes'}: one run of its ranks, each device counted once`;
  }
  return item;
}

export class CarbonPanel extends Widget {
  /** `notebookPath` says which notebook is current (its server path, as kernels record it). */
  constructor(private readonly notebookPath: () => string | null) {
    super();
    this.addClass('jp-NotebookCarbon');
    this.title.caption = 'Notebook carbon';
    const toolbar = element('div', 'jp-NotebookCarbon-toolbar');
    const refresh = element('button', 'jp-Button jp-mod-styled jp-mod-reject', 'Refresh');
    refresh.addEventListener('click', () => void this.refresh());
    toolbar.append(refresh, this.download('md', 'Markdown'), this.download('latex', 'LaTeX'));
    this.node.append(toolbar, this.status, this.body);
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
    this.status.textContent = 'Loading\u2026';
    try {
      const [project, current, latest, sweeps, redundant] = await Promise.all([
        fetchSummary(),
        notebook ? fetchSummary(notebook) : Promise.resolve(null),
        fetchRuns(LATEST),
        fetchSweeps(),
        fetchRedundant(LISTED)
      ]);
      if (generation !== this.generation) {
        return; // a later refresh started meanwhile: its answer is the one to show
      }
      this.render(project, notebook, current, latest, sweeps, redundant);
      this.status.textContent = '';
    } catch (error) {
      if (generation === this.generation) {
        this.status.textContent = this.explain(error);
      }
    }
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    if (this.stale || !this.body.hasChildNodes()) {
      void this.refresh();
    }
  }

  protected onBeforeDetach(msg: Message): void {
    window.clearTimeout(this.timer);
    super.onBeforeDetach(msg);
  }

  private explain(error: unknown): string {
    if (error instanceof ApiError && error.status === 404) {
      return 'The notebook-carbon server extension is not enabled: see `jupyter server extension list`.';
    }
    return `Could not read the registry: ${error instanceof Error ? error.message : String(error)}`;
  }

  private render(
    project: ISummary,
    notebook: string | null,
    current: ISummary | null,
    latest: IRuns,
    sweeps: ISweep[],
    redundant: IRedundant
  ): void {
    this.project = project.project;
    const totals = project.totals;
    const dev = project.development;

    const head = section(`Project ${project.project}`);
    head.append(
      row('Runs', `${project.runs}${project.runs ? ` (${formatStatuses(project.statuses)})` : ''}`),
      row('Energy', formatRange(totals.energy_j, 'energy'), 'IT energy, with its range'),
      row('Facility energy', formatRange(totals.facility_energy_j, 'energy'), 'energy x PUE'),
      row('Emissions', formatRange(totals.emissions_g, 'mass'), 'operational, g CO2e, with its range'),
      row('Embodied', formatRange(totals.embodied_g, 'mass'), 'g CO2e of hardware manufacture, amortised'),
      row('Total', formatRange(totals.total_g, 'mass'), 'g CO2e, operational + embodied'),
      row('Water', totals.water_l ? formatWater(totals.water_l.value) : MISSING, totals.water_l?.basis),
      row(
        'Development overhead',
        formatRatio(dev.ratio),
        `all runs' energy / the selected runs' energy (${plural(dev.selected_runs, 'selected run')})`
      ),
      row('Failed runs', `${dev.failed_runs} (${formatPercent(dev.failed_share)} of energy)`),
      row('Redundant runs', `${dev.redundant_runs} (${formatPercent(dev.redundant_share)} of energy)`)
    );

    const here = section(notebook ? `This notebook: ${notebook}` : 'This notebook');
    if (!notebook || !current) {
      here.append(element('p', 'jp-NotebookCarbon-note', 'Open a notebook to see its total.'));
    } else if (!current.runs) {
      here.append(element('p', 'jp-NotebookCarbon-note', 'No metered runs of this notebook yet.'));
    } else {
      here.append(
        row('Runs', String(current.runs)),
        row('Energy', formatRange(current.totals.energy_j, 'energy')),
        row('Emissions', formatRange(current.totals.emissions_g, 'mass')),
        row('Total with embodied', formatRange(current.totals.total_g, 'mass'))
      );
    }

    const latestPart = section(`Latest runs (${latest.total})`);
    if (!latest.runs.length) {
      latestPart.append(element('p', 'jp-NotebookCarbon-note', 'No runs yet.'));
    }
    const latestList = element('ul', 'jp-NotebookCarbon-list');
    for (const run of latest.runs) {
      latestList.append(runItem(run));
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

    const redundantPart = section(`Redundant runs (${redundant.total})`);
    if (redundant.total) {
      redundantPart.append(
        row('Wasted', `${formatEnergy(redundant.energy_j)} \u00b7 ${formatEmissions(redundant.emissions_g)}`)
      );
    } else {
      redundantPart.append(element('p', 'jp-NotebookCarbon-note', 'No redundant runs.'));
    }
    const redundantList = element('ul', 'jp-NotebookCarbon-list');
    for (const run of redundant.runs) {
      const item = element('li', 'jp-NotebookCarbon-item');
      item.append(
        element('div', 'jp-NotebookCarbon-name', `#${run.id}${run.name ? ` ${run.name}` : ''}`),
        element(
          'div',
          'jp-NotebookCarbon-detail',
          [describeRepeat(run.repeats), formatEnergy(run.energy_j), describeJob(run)].filter(Boolean).join(' \u00b7 ')
        )
      );
      redundantList.append(item);
    }
    redundantPart.append(redundantList);
    if (redundant.total > redundant.runs.length) {
      redundantPart.append(
        element('p', 'jp-NotebookCarbon-note', `and ${redundant.total - redundant.runs.length} more`)
      );
    }

    this.body.replaceChildren(head, here, latestPart, sweepPart, redundantPart);
  }

  private download(format: 'md' | 'latex', label: string): HTMLButtonElement {
    const button = element('button', 'jp-Button jp-mod-styled jp-mod-accept', label);
    button.title = `Download the impact statement as ${label}`;
    button.addEventListener('click', async () => {
      // The whole project's statement, like the totals at the top of the panel.
      try {
        const text = await fetchStatement(format);
        const type = format === 'md' ? 'text/markdown' : 'application/x-latex';
        const url = URL.createObjectURL(new Blob([text], { type }));
        const link = document.createElement('a');
        link.href = url;
        link.download = statementFilename(this.project, null, format);
        document.body.append(link);
        link.click();
        link.remove();
        window.setTimeout(() => URL.revokeObjectURL(url), 0);
      } catch (error) {
        this.status.textContent = this.explain(error);
      }
    });
    return button;
  }

  private readonly status = element('div', 'jp-NotebookCarbon-status');
  private readonly body = element('div', 'jp-NotebookCarbon-body');
  private project: string | null = null;
  private generation = 0;
  private stale = true;
  private timer = 0;
}
