/**
 * A run's cell, as the server gives it (pure: no JupyterLab import, so node tests it). The server
 * gives a run's notebook as its path under the server's root (`path`, null when the notebook is
 * elsewhere) and its cell: the id JupyterLab sent with it (`cell_id`) and, for runs recorded before
 * ids were, its In [n] (`execution_count`, which matches only until the cell runs again).
 */

/** Where a run was metered: its notebook's path under the server's root and its cell. */
export interface ICellRef {
  path: string | null;
  cell_id?: string | null;
  execution_count?: number | null;
}

/** What `findCell` reads of a notebook's cell. */
export interface ICellInfo {
  id: string;
  type: string;
  executionCount: number | null;
}

/**
 * The index in `cells` of the cell `ref` ran in: the cell with its id; else, without an id, the
 * code cell whose In [n] is the run's, when exactly one is; -1 when neither is found (and for a
 * run that recorded no cell: `hasCell` tells).
 */
export function findCell(cells: readonly ICellInfo[], ref: ICellRef): number {
  if (ref.cell_id) {
    return cells.findIndex(cell => cell.id === ref.cell_id);
  }
  if (ref.execution_count === null || ref.execution_count === undefined) {
    return -1;
  }
  const found = cells
    .map((cell, index) => (cell.type === 'code' && cell.executionCount === ref.execution_count ? index : -1))
    .filter(index => index >= 0);
  return found.length === 1 ? found[0] : -1;
}

/** Whether `ref` recorded its cell at all (its id or its In [n]): else its link opens the notebook at its top. */
export function hasCell(ref: ICellRef): boolean {
  return !!ref.cell_id || (ref.execution_count !== null && ref.execution_count !== undefined);
}

/** How a link to `ref`'s cell says where it goes (its title), or why there is none. */
export function describeCell(ref: ICellRef, notebook: string | null | undefined): string {
  if (!ref.path) {
    return notebook
      ? `its notebook ${notebook} is outside the Jupyter server's root: open it there`
      : 'recorded outside a notebook';
  }
  const cell = ref.cell_id
    ? 'the cell it ran in'
    : ref.execution_count !== null && ref.execution_count !== undefined
      ? `the cell numbered In [${ref.execution_count}], if it has not run again since`
      : 'its top (the run recorded no cell)';
  return `Open ${ref.path} at ${cell}`;
}
