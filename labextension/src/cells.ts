/** Opening a run's notebook at the cell it ran in (`links.ts` finds the cell). */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { NotebookPanel } from '@jupyterlab/notebook';

import { findCell, hasCell, ICellRef } from './links';

/**
 * Open (or bring forward) `ref`'s notebook and scroll to its cell, selecting it. Resolves to ''
 * when the cell is shown, else to what went wrong, said for the user (the notebook was opened
 * whenever it could be).
 */
export async function openCell(app: JupyterFrontEnd, ref: ICellRef): Promise<string> {
  if (!ref.path) {
    return 'The run\u2019s notebook is outside the Jupyter server\u2019s root, so JupyterLab cannot open it.';
  }
  try {
    await app.serviceManager.contents.get(ref.path, { content: false });
  } catch {
    return `The notebook is no longer at ${ref.path}: it was moved or deleted.`;
  }
  let widget: unknown;
  try {
    widget = await app.commands.execute('docmanager:open', { path: ref.path, factory: 'Notebook' });
  } catch (error) {
    return `Could not open ${ref.path}: ${error instanceof Error ? error.message : String(error)}`;
  }
  if (!(widget instanceof NotebookPanel)) {
    return `Could not open ${ref.path} as a notebook.`;
  }
  await widget.context.ready;
  app.shell.activateById(widget.id);
  await widget.revealed;
  const notebook = widget.content;
  const cells = notebook.widgets.map(cell => ({
    id: cell.model.id,
    type: cell.model.type,
    executionCount: cell.model.type === 'code' ? ((cell.model as any).executionCount ?? null) : null
  }));
  if (!hasCell(ref)) {
    await notebook.scrollToItem(0, 'start');
    notebook.activeCellIndex = 0;
    notebook.mode = 'command';
    return '';
  }
  const index = findCell(cells, ref);
  if (index < 0) {
    return ref.cell_id
      ? `The cell the run ran in is no longer in ${ref.path}: it was deleted, or the notebook replaced.`
      : `No single cell is In [${ref.execution_count}] in ${ref.path} now (the run recorded no cell id).`;
  }
  await notebook.scrollToCell(notebook.widgets[index], 'center');
  notebook.activeCellIndex = index;
  notebook.mode = 'command'; // selected, not being edited: a key pressed next edits nothing
  return '';
}
