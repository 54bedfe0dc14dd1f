/**
 * A saved dashboard, opened again without the kernel that drew it. `%carbon dashboard` displays a
 * widget whose output also carries a static snapshot (`text/html`, its charts as inline SVG) and a
 * marker, `DASHBOARD_MIME`. JupyterLab gives such an output to the widget renderer, which, once the
 * kernel that drew it is gone (the notebook opened again, the page loaded again after a restart),
 * shows "Error displaying widget: model not found", and without a kernel "Loading widget..." for
 * good; never the snapshot. For outputs with the marker, the factory added here, ranked before the
 * widget renderer, hands out the notebook's own widget renderer (so the widget manager finds and
 * binds it as any other), watched: where it says it failed, or the notebook has no kernel, the
 * snapshot is drawn inside it by JupyterLab's HTML renderer; where the live widget comes, the
 * snapshot goes.
 */
import { ISessionContext } from '@jupyterlab/apputils';
import { NotebookPanel } from '@jupyterlab/notebook';
import { Panel, Widget } from '@lumino/widgets';

/** The marker the dashboard's output carries (`Dashboard._repr_mimebundle_`). */
export const DASHBOARD_MIME = 'application/vnd.notebook-carbon.dashboard+json';
const WIDGET_MIME = 'application/vnd.jupyter.widget-view+json';
/** Before the widget renderer's rank (-10): outputs with the marker come here. */
const RANK = -20;

type Registry = NotebookPanel['content']['rendermime'];
type Renderer = ReturnType<Registry['createRenderer']>;
type MimeModel = Parameters<Renderer['renderModel']>[0];

/** What the widget renderer shows, as its only text, when it cannot draw the widget. */
function failed(node: HTMLElement): boolean {
  return node.childElementCount === 0 && (node.textContent ?? '').startsWith('Error displaying widget');
}

/** Draw the dashboard's outputs in notebook `panel` as described above. */
export function addSnapshotRenderer(panel: NotebookPanel): void {
  const rendermime = panel.content.rendermime;
  if (rendermime.getFactory(DASHBOARD_MIME)) {
    return;
  }
  rendermime.addFactory(
    {
      safe: false,
      mimeTypes: [DASHBOARD_MIME],
      createRenderer: options => {
        const widgets = rendermime.getFactory(WIDGET_MIME);
        if (!widgets) {
          return new SnapshotOnly(rendermime); // no widgets in this JupyterLab
        }
        const live = widgets.createRenderer({ ...options, mimeType: WIDGET_MIME });
        if (live instanceof Panel) {
          new Fallback(live, rendermime, panel.sessionContext);
        }
        return live;
      }
    },
    RANK
  );
}

/** `model`'s snapshot as a new HTML renderer's output. */
function drawSnapshot(rendermime: Registry, model: MimeModel): Renderer {
  const html = model.data['text/html'];
  const shown = rendermime.createRenderer(html ? 'text/html' : 'text/plain');
  const data = html ? { 'text/html': html } : { 'text/plain': model.data['text/plain'] ?? '' };
  void shown.renderModel(rendermime.createModel({ data, trusted: model.trusted, metadata: model.metadata }));
  return shown;
}

/** Watches the widget renderer `live` of one output, and draws the snapshot in it when it must. */
class Fallback {
  constructor(
    private readonly live: Panel & Renderer,
    private readonly rendermime: Registry,
    private readonly session: ISessionContext
  ) {
    const render = live.renderModel.bind(live);
    live.renderModel = async (model: MimeModel) => {
      this.model = model; // a display update: the newest snapshot is the one to show
      try {
        await render(model);
      } finally {
        this.check();
      }
    };
    // the widget renderer sets its messages as its node's text: its own children are enough to watch
    this.observer = new MutationObserver(() => this.check());
    this.observer.observe(live.node, { childList: true });
    session.statusChanged.connect(this.check, this);
    void session.ready.then(() => this.check()).catch(() => undefined);
    live.disposed.connect(() => {
      this.observer.disconnect();
      session.statusChanged.disconnect(this.check, this);
      this.shown?.dispose();
    });
  }

  private check(): void {
    const live = this.live;
    if (live.isDisposed || this.model === null) {
      return;
    }
    if (live.widgets.some(child => child !== this.shown)) {
      this.drop(); // the live widget is drawn: no snapshot
      return;
    }
    const showing = this.shown !== null && this.shown.node.isConnected;
    const kernelless = this.session.isReady && !this.session.session?.kernel;
    if (!showing && (failed(live.node) || kernelless)) {
      this.drop();
      live.node.textContent = ''; // the widget renderer's message
      this.shown = drawSnapshot(this.rendermime, this.model);
      live.addWidget(this.shown);
    }
  }

  private drop(): void {
    this.shown?.dispose();
    this.shown = null;
  }

  private model: MimeModel | null = null;
  private shown: Widget | null = null;
  private readonly observer: MutationObserver;
}

/** Only the snapshot: where JupyterLab has no widget renderer. */
class SnapshotOnly extends Panel {
  constructor(private readonly rendermime: Registry) {
    super();
  }

  async renderModel(model: MimeModel): Promise<void> {
    for (const child of [...this.widgets]) {
      child.dispose();
    }
    this.addWidget(drawSnapshot(this.rendermime, model));
  }
}
