// Thin client for MLflow's REST API (ajax-api mirror) and mltrail's documented UI endpoints.
import type {
  BucketedSeries,
  Experiment,
  ExperimentKeys,
  FileInfo,
  MetricSummary,
  Run,
  RunGroup,
  RunInfo,
  ViewType,
  XAxis,
} from "./types";

/** An error answered by the server: MLflow's `{error_code, message}`. */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** The directory the UI is served from (it ends with "/"), so a `--static-prefix` needs no configuration. */
export function serverBase(): string {
  const path = window.location.pathname;
  return path.slice(0, path.lastIndexOf("/") + 1);
}

const MLFLOW = () => `${serverBase()}ajax-api/2.0/mlflow`;
const MLTRAIL = () => `${serverBase()}ajax-api/2.0/mltrail`;

type Query = Record<string, string | number | undefined | (string | number)[]>;

function queryString(query: Query): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined) continue;
    for (const item of Array.isArray(v) ? v : [v]) params.append(k, String(item));
  }
  const s = params.toString();
  return s ? `?${s}` : "";
}

async function request<T>(url: string, init?: RequestInit): Promise<T> {
  const response = await fetch(url, init);
  const text = await response.text();
  let body: unknown = {};
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    body = { message: text };
  }
  if (!response.ok) {
    const err = body as { error_code?: string; message?: string };
    throw new ApiError(err.error_code ?? "INTERNAL_ERROR", err.message ?? `HTTP ${response.status}`, response.status);
  }
  return body as T;
}

export function get<T>(url: string, query: Query = {}): Promise<T> {
  return request<T>(url + queryString(query));
}

export function post<T>(url: string, body: unknown): Promise<T> {
  return request<T>(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

// --- experiments --------------------------------------------------------------------------------------

export interface Page<T> {
  items: T[];
  nextPageToken?: string;
}

export async function searchExperiments(opts: {
  filter?: string;
  viewType?: ViewType;
  orderBy?: string[];
  pageToken?: string;
  maxResults?: number;
}): Promise<Page<Experiment>> {
  const r = await post<{ experiments?: Experiment[]; next_page_token?: string }>(`${MLFLOW()}/experiments/search`, {
    filter: opts.filter || undefined,
    view_type: opts.viewType ?? "ACTIVE_ONLY",
    order_by: opts.orderBy,
    page_token: opts.pageToken,
    max_results: opts.maxResults ?? 1000,
  });
  return { items: r.experiments ?? [], nextPageToken: r.next_page_token };
}

export async function getExperiment(id: string): Promise<Experiment> {
  return (await get<{ experiment: Experiment }>(`${MLFLOW()}/experiments/get`, { experiment_id: id })).experiment;
}

export async function createExperiment(name: string): Promise<string> {
  return (await post<{ experiment_id: string }>(`${MLFLOW()}/experiments/create`, { name })).experiment_id;
}

export const renameExperiment = (id: string, newName: string) =>
  post(`${MLFLOW()}/experiments/update`, { experiment_id: id, new_name: newName });
export const deleteExperiment = (id: string) => post(`${MLFLOW()}/experiments/delete`, { experiment_id: id });
export const restoreExperiment = (id: string) => post(`${MLFLOW()}/experiments/restore`, { experiment_id: id });

// --- runs ---------------------------------------------------------------------------------------------

export interface RunSearch {
  experimentIds: string[];
  filter?: string;
  viewType?: ViewType;
  orderBy?: string[];
}

export async function searchRuns(search: RunSearch, pageToken?: string, maxResults = 500): Promise<Page<Run>> {
  const r = await post<{ runs?: Run[]; next_page_token?: string }>(`${MLFLOW()}/runs/search`, {
    experiment_ids: search.experimentIds,
    filter: search.filter || undefined,
    run_view_type: search.viewType ?? "ACTIVE_ONLY",
    order_by: search.orderBy,
    page_token: pageToken,
    max_results: maxResults,
  });
  return { items: r.runs ?? [], nextPageToken: r.next_page_token };
}

export async function getRun(runId: string): Promise<Run> {
  return (await get<{ run: Run }>(`${MLFLOW()}/runs/get`, { run_id: runId })).run;
}

export const deleteRun = (runId: string) => post(`${MLFLOW()}/runs/delete`, { run_id: runId });
export const restoreRun = (runId: string) => post(`${MLFLOW()}/runs/restore`, { run_id: runId });
export const renameRun = (runId: string, name: string) =>
  post<{ run_info: RunInfo }>(`${MLFLOW()}/runs/update`, { run_id: runId, run_name: name });
export const setRunTag = (runId: string, key: string, value: string) =>
  post(`${MLFLOW()}/runs/set-tag`, { run_id: runId, key, value });
export const deleteRunTag = (runId: string, key: string) => post(`${MLFLOW()}/runs/delete-tag`, { run_id: runId, key });

// --- artifacts ----------------------------------------------------------------------------------------

export async function listArtifacts(runId: string, path?: string): Promise<FileInfo[]> {
  const r = await get<{ files?: FileInfo[] }>(`${MLFLOW()}/artifacts/list`, { run_id: runId, path: path || undefined });
  return r.files ?? [];
}

export function artifactUrl(runId: string, path: string): string {
  return `${serverBase()}get-artifact${queryString({ run_id: runId, path })}`;
}

/** The first `maxBytes` of an artifact as text (a Range request, so large files are not downloaded). */
export async function readArtifactText(runId: string, path: string, maxBytes: number): Promise<{ text: string; truncated: boolean }> {
  const response = await fetch(artifactUrl(runId, path), { headers: { Range: `bytes=0-${maxBytes - 1}` } });
  if (!response.ok && response.status !== 206) {
    const body = await response.json().catch(() => ({}));
    throw new ApiError(body.error_code ?? "INTERNAL_ERROR", body.message ?? `HTTP ${response.status}`, response.status);
  }
  const total = Number(response.headers.get("Content-Range")?.split("/")[1] ?? NaN);
  const text = await response.text();
  return { text, truncated: response.status === 206 && Number.isFinite(total) && total > maxBytes };
}

// --- mltrail UI endpoints -----------------------------------------------------------------------------

function searchBody(search: RunSearch) {
  return {
    experiment_ids: search.experimentIds,
    filter: search.filter || undefined,
    run_view_type: search.viewType ?? "ACTIVE_ONLY",
  };
}

export async function countRuns(search: RunSearch): Promise<number> {
  return (await post<{ count: number }>(`${MLTRAIL()}/runs/count`, searchBody(search))).count;
}

export function experimentKeys(search: RunSearch): Promise<ExperimentKeys> {
  return post<ExperimentKeys>(`${MLTRAIL()}/experiments/keys`, searchBody(search));
}

export async function runGroups(search: RunSearch, groupBy: string, metricKeys: string[]): Promise<RunGroup[]> {
  const body = { ...searchBody(search), group_by: groupBy, metric_keys: metricKeys };
  return (await post<{ groups?: RunGroup[] }>(`${MLTRAIL()}/runs/groups`, body)).groups ?? [];
}

/** Most (run, key) series one UI request asks for; larger sets are split and fetched in parallel. */
export const SERIES_PER_REQUEST = 200;

/** Split runs × keys into requests of at most `limit` series (whole keys × run slices). */
export function chunkSeries(runIds: string[], keys: string[], limit = SERIES_PER_REQUEST): { runIds: string[]; keys: string[] }[] {
  const out: { runIds: string[]; keys: string[] }[] = [];
  if (!runIds.length || !keys.length) return out;
  const runsPer = Math.min(runIds.length, Math.max(1, limit));
  const keysPer = Math.max(1, Math.floor(limit / runsPer));
  for (let k = 0; k < keys.length; k += keysPer) {
    for (let r = 0; r < runIds.length; r += runsPer) {
      out.push({ runIds: runIds.slice(r, r + runsPer), keys: keys.slice(k, k + keysPer) });
    }
  }
  return out;
}

export async function bucketedMetrics(opts: {
  runIds: string[];
  keys: string[];
  xAxis: XAxis;
  xMin?: number;
  xMax?: number;
  buckets?: number;
  signal?: AbortSignal;
}): Promise<BucketedSeries[]> {
  const parts = await Promise.all(
    chunkSeries(opts.runIds, opts.keys).map((c) =>
      request<{ series?: BucketedSeries[] }>(`${MLTRAIL()}/metrics/bucketed`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        signal: opts.signal,
        body: JSON.stringify({
          run_ids: c.runIds,
          metric_keys: c.keys,
          x_axis: opts.xAxis,
          x_min: opts.xMin,
          x_max: opts.xMax,
          buckets: opts.buckets,
        }),
      }),
    ),
  );
  return parts.flatMap((p) => p.series ?? []);
}

export async function metricSummaries(runIds: string[], keys: string[]): Promise<MetricSummary[]> {
  const parts = await Promise.all(
    chunkSeries(runIds, keys).map((c) =>
      post<{ summaries?: MetricSummary[] }>(`${MLTRAIL()}/metrics/summary`, { run_ids: c.runIds, metric_keys: c.keys }),
    ),
  );
  return parts.flatMap((p) => p.summaries ?? []);
}
