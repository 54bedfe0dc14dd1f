/**
 * A saved dashboard, opened again without the kernel that drew it. `%carbon dashboard` displays a
 * widget whose output also carries a static snapshot (`text/html`, its charts as inline SVG) and a
 * marker, `DASHBOARD_MIME`. JupyterLab gives such an output to the widget renderer, which, once its
 * kernel is gone, shows "Error displaying widget: model not found" and never the snapshot. For
 * outputs with the marker, this renderer, ranked before the widget renderer in each notebook, draws
 * the live widget where the kernel still has it, and the snapshot where it does not.
 */
import { NotebookPanel } from '@jupyterlab/notebook';
import type { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Panel } from '@lumino/widgets';

/** The marker the dashboard's output carries (`Dashboard._repr_mimebundle_`). */
export const DASHBOARD_MIME = 'application/vnd.notebook-carbon.dashboard+json';
const WIDGET_MIME = 'application/vnd.jupyter.widget-view+json';
/** Before the widget renderer's rank (-10): outputs with the marker come here. */
const RANK = -20;
/** How often, and how long at most, a widget still loading is looked at again. */
const WAIT_MS = 250;
const MAX_WAIT_MS = 120000;

/** What the widget renderer shows when its kernel has no such widget (or it cannot be drawn). */
function failed(node: HTMLElement): boolean {
  return (node.textContent ?? '').startsWith('Error displaying widget');
}

/** Use `DashboardRenderer` for the dashboard's outputs in notebook `panel`. */
export function addSnapshotRenderer(panel: NotebookPanel): void {
  const rendermime = panel.content.rendermime;
  if (rendermime.getFactory(DASHBOARD_MIME)) {
    return;
  }
  rendermime.addFactory(
    { safe: false, mimeTypes: [DASHBOARD_MIME], createRenderer: () => new DashboardRenderer(rendermime) },
    RANK
  );
}

class DashboardRenderer extends Panel implements IRenderMime.IRenderer {
  constructor(private readonly rendermime: NotebookPanel['content']['rendermime']) {
    super();
    this.addClass('jp-NotebookCarbon-dashboardOutput');
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    this.stop();
    if (!model.data[WIDGET_MIME] || !this.rendermime.getFactory(WIDGET_MIME)) {
      return this.snapshot(model); // no widgets in this JupyterLab
    }
    // A notebook's outputs are drawn before its widget manager is bound to it: the renderer made
    // then waits (its renderModel pending) for a manager that never finds it inside this panel.
    // When the notebook's widget factory is replaced by the bound one, draw the widget again with it.
    let waited = 0;
    this.timer = window.setInterval(() => {
      waited += WAIT_MS;
      const renderer = this.widgets[0];
      const loading = renderer !== undefined && (renderer.node.textContent ?? '') === 'Loading widget...';
      if (!loading || waited > MAX_WAIT_MS) {
        this.stopTimer();
      } else if (this.rendermime.getFactory(WIDGET_MIME) !== this.factory) {
        void this.live(model);
      }
    }, WAIT_MS);
    await this.live(model);
  }

  dispose(): void {
    this.stop();
    super.dispose();
  }

  /** The live widget, drawn by the notebook's widget renderer; the snapshot if that fails. */
  private async live(model: IRenderMime.IMimeModel): Promise<void> {
    this.watcher?.disconnect();
    this.clear();
    this.factory = this.rendermime.getFactory(WIDGET_MIME);
    const live = this.rendermime.createRenderer(WIDGET_MIME);
    this.addWidget(live);
    // the widget renderer says it failed in its text, now or once the kernel's widgets are restored
    this.watcher = new MutationObserver(() => {
      if (failed(live.node)) {
        void this.snapshot(model);
      }
    });
    this.watcher.observe(live.node, { childList: true, characterData: true, subtree: true });
    await live.renderModel(model);
    if (failed(live.node)) {
      await this.snapshot(model);
    }
  }

  /** The static snapshot instead of the live widget, drawn by JupyterLab's own HTML renderer. */
  private async snapshot(model: IRenderMime.IMimeModel): Promise<void> {
    this.stop();
    this.clear();
    const html = model.data['text/html'];
    const shown = this.rendermime.createRenderer(html ? 'text/html' : 'text/plain');
    this.addWidget(shown);
    const data = html ? { 'text/html': html } : { 'text/plain': model.data['text/plain'] ?? '' };
    await shown.renderModel(this.rendermime.createModel({ data, trusted: model.trusted, metadata: model.metadata }));
  }

  private clear(): void {
    for (const child of [...this.widgets]) {
      child.dispose();
    }
  }

  private stopTimer(): void {
    window.clearInterval(this.timer);
    this.timer = 0;
  }

  private stop(): void {
    this.stopTimer();
    this.watcher?.disconnect();
    this.watcher = null;
  }

  private factory: IRenderMime.IRendererFactory | undefined = undefined;
  private timer = 0;
  private watcher: MutationObserver | null = null;
}
