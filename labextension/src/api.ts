/**
 * The server extension's REST endpoints (docs/server.md), typed as far as the sidebar reads them.
 * Energy in J, emissions in g CO2e, water in L.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { ICellRef } from './links';
import { IHistory } from './chart';
import { ITradeoff } from './tradeoffs';
import { IJobCounts, IRanged, queryString, StatementFormat } from './format';

export interface ISummary {
  project: string;
  notebook: string | null;
  runs: number;
  statuses: Record<string, number>;
  totals: {
    energy_j: IRanged;
    facility_energy_j: IRanged;
    emissions_g: IRanged;
    embodied_g: IRanged;
    total_g: IRanged;
    water_l: { value: number; runs?: number; basis?: string } | null;
    duration_s: number;
  };
  development: {
    selected_runs: number;
    selected_energy_j: number;
    all_energy_j: number;
    ratio: number | null;
    sweeps: number;
    failed_runs: number;
    failed_share: number | null;
    redundant_runs: number;
    redundant_energy_j: number;
    redundant_share: number | null;
  };
}

export interface ISweep {
  key: string;
  label: string;
  runs: number;
  energy_j: number;
  emissions_g: number;
  overhead_ratio: number | null;
  failed_runs: number;
  redundant_runs: number;
}

/**
 * A run of a page of runs; a distributed job is one run, its `job_*` counts set. Its cell
 * (`ICellRef`): `path`, its notebook under the server's root, `cell_id` and `execution_count`.
 */
export interface IRun extends IJobCounts, ICellRef {
  id: number;
  name: string | null;
  notebook: string | null;
  status: string;
  host: string | null;
  sweep: string | null;
  started_at: number | null;
  energy_j: number | null;
  emissions_g: number | null;
  duration_s: number | null;
}

export interface IRuns {
  total: number;
  runs: IRun[];
}

export interface IRedundantRun extends IJobCounts, ICellRef {
  id: number;
  name: string | null;
  notebook: string | null;
  energy_j: number | null;
  emissions_g: number | null;
  /** The earlier run it repeats, with its notebook and cell (all but `id` null once it is deleted). */
  repeats: ({ id: number | null; name: string | null; status: string | null; notebook: string | null } & ICellRef) | null;
}

export interface IRedundant {
  total: number;
  energy_j: number;
  emissions_g: number;
  runs: IRedundantRun[];
}

/** An error answer of the server, with its own message (it says what to do). */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
  }
}

/** GET `<base_url>/notebook-carbon/<endpoint>?<params>`; JSON unless `asText`. */
async function get(
  endpoint: string,
  params: Record<string, string | number | null | undefined>,
  asText = false
): Promise<any> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'notebook-carbon', endpoint) + queryString(params);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, {}, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const body = await response.text();
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      message = JSON.parse(body).message || message;
    } catch {
      // not JSON (a proxy's page): keep the status line
    }
    throw new ApiError(message, response.status);
  }
  return asText ? body : JSON.parse(body);
}

export function fetchSummary(notebook?: string | null): Promise<ISummary> {
  return get('summary', { notebook });
}

/** The sweeps, without their varying parameters, which the sidebar does not show (a read less per sweep). */
export async function fetchSweeps(): Promise<ISweep[]> {
  return (await get('sweeps', { params: 'false' })).sweeps;
}

export function fetchRuns(limit: number): Promise<IRuns> {
  return get('runs', { limit });
}

export function fetchRedundant(limit: number): Promise<IRedundant> {
  return get('redundant', { limit });
}

export function fetchHistory(spans: number): Promise<IHistory> {
  return get('history', { spans });
}

export function fetchStatement(format: StatementFormat, notebook?: string | null): Promise<string> {
  return get('statement', { format, notebook }, true);
}

/** The costliest result sweeps whose runs logged a metric, each with its runs as points. */
export async function fetchTradeoffs(limit: number): Promise<ITradeoff[]> {
  return (await get('tradeoffs', { limit })).tradeoffs;
}
