/**
 * notebook-carbon's JupyterLab sidebar. It reads the server extension's endpoints
 * (docs/server.md) when shown and after a cell of the current notebook finishes; it never polls.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';

import { openCell } from './cells';
import { ICellRef } from './links';
import { carbonIcon } from './icon';
import { addSnapshotRenderer } from './snapshot';
import { CarbonPanel } from './panel';

const PLUGIN_ID = 'notebook-carbon-labextension:sidebar';

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'A sidebar with the energy, emissions and water of the project and the current notebook.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    restorer: ILayoutRestorer | null
  ) => {
    const open = async (ref: ICellRef) => {
      const problem = await openCell(app, ref);
      if (problem) {
        Notification.warning(problem, { autoClose: 8000 });
      }
    };
    const panel = new CarbonPanel(() => tracker.currentWidget?.context.path ?? null, open);
    panel.id = 'notebook-carbon-sidebar';
    panel.title.icon = carbonIcon;
    app.shell.add(panel, 'right', { rank: 900 });
    restorer?.add(panel, PLUGIN_ID);

    NotebookActions.executed.connect((_, { notebook }) => {
      if (notebook === tracker.currentWidget?.content) {
        panel.cellExecuted();
      }
    });
    // Another notebook's total: refreshed now if the panel is shown, else when it is.
    tracker.currentChanged.connect(() => panel.invalidate());
    // A saved dashboard shows its snapshot once its kernel is gone (see snapshot.ts).
    tracker.forEach(addSnapshotRenderer);
    tracker.widgetAdded.connect((_, added) => {
      addSnapshotRenderer(added);
      // A renamed notebook's kernel records under the new path from then on.
      added.context.pathChanged.connect(() => {
        if (added === tracker.currentWidget) {
          panel.invalidate();
        }
      });
    });
  }
};

export default plugin;
