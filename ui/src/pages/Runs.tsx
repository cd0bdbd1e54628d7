import { useCallback, useEffect, useMemo, useState } from "preact/hooks";
import { ChartsPanel } from "../components/ChartsPanel";
import { ColumnPicker } from "../components/ColumnPicker";
import { Dialog, ErrorBox } from "../components/common";
import { RunsTable } from "../components/RunsTable";
import {
  deleteRun,
  experimentKeys,
  getExperiment,
  renameRun,
  restoreRun,
  searchRuns,
  setRunTag,
  type RunSearch,
} from "../lib/api";
import { defaultColumns, orderBy, paramValue, tagValue } from "../lib/columns";
import { navigate, useAsync } from "../lib/hooks";
import { compareRoute, type ChartSettings, type Route } from "../lib/route";
import { fetchRunsByIds } from "../lib/runsById";
import type { Run, ViewType } from "../lib/types";

type RunsRoute = Extract<Route, { page: "runs" }>;
type Action = "delete" | "restore" | "tag" | "rename" | null;

const CHART_DEFAULT_RUNS = 10;
/** Runs aggregated per group in charts when none are selected. */
const CHART_GROUPED_RUNS = 500;

/** Run `fn` over items with a few requests in flight at a time. */
async function forEach<T>(items: T[], fn: (item: T) => Promise<unknown>, concurrency = 6): Promise<void> {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: Math.min(concurrency, queue.length) }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) await fn(item);
    }),
  );
}

function groupFn(groupBy: string | null): ((run: Run) => string | null) | undefined {
  if (!groupBy) return undefined;
  const [kind, ...rest] = groupBy.split(".");
  const key = rest.join(".");
  if (kind === "params") return (r) => paramValue(r, key) ?? null;
  if (kind === "tags") return (r) => tagValue(r, key) ?? null;
  return (r) => String((r.info as unknown as Record<string, unknown>)[groupBy] ?? "") || null;
}

export function RunsPage({ route }: { route: RunsRoute }) {
  const search: RunSearch = useMemo(
    () => ({
      experimentIds: route.experimentIds,
      filter: route.filter,
      viewType: route.view,
      orderBy: orderBy(route.sort, route.asc),
    }),
    [route.experimentIds.join(","), route.filter, route.view, route.sort, route.asc],
  );
  const go = (patch: Partial<RunsRoute>, replace = false) => navigate({ ...route, ...patch }, replace);
  const experiments = useAsync(() => Promise.all(route.experimentIds.map(getExperiment)), [route.experimentIds.join(",")]);
  const keys = useAsync(
    () => experimentKeys({ experimentIds: route.experimentIds, viewType: route.view }),
    [route.experimentIds.join(","), route.view],
  );
  const [filterText, setFilterText] = useState(route.filter);
  useEffect(() => setFilterText(route.filter), [route.filter]);
  const [tableError, setTableError] = useState<Error | null>(null);
  const [loaded, setLoaded] = useState<Run[]>([]);
  const [reloadKey, setReloadKey] = useState(0);
  const [action, setAction] = useState<Action>(null);
  const selected = useMemo(() => new Set(route.sel), [route.sel.join(",")]);
  const columns = route.cols ?? (keys.data ? defaultColumns(keys.data.metric_keys, keys.data.param_keys) : defaultColumns([], []));

  const onSelect = useCallback(
    (ids: string[], on: boolean) => {
      const next = new Set(route.sel);
      for (const id of ids) {
        if (on) next.add(id);
        else next.delete(id);
      }
      navigate({ ...route, sel: [...next] }, true);
    },
    [route],
  );

  const loadedById = useMemo(() => new Map(loaded.map((r) => [r.info.run_id, r])), [loaded]);
  const chartRuns = useAsync(async () => {
    if (route.tab !== "charts") return [];
    if (!route.sel.length) return (await searchRuns(search, undefined, route.group ? CHART_GROUPED_RUNS : CHART_DEFAULT_RUNS)).items;
    const missing = route.sel.filter((id) => !loadedById.has(id));
    const fetched = missing.length ? await fetchRunsByIds(route.experimentIds, missing) : [];
    const byId = new Map([...loadedById, ...fetched.map((r) => [r.info.run_id, r] as const)]);
    return route.sel.flatMap((id) => (byId.has(id) ? [byId.get(id)!] : []));
  }, [route.tab, route.sel.join(","), search, route.group]);

  const groupOf = useMemo(() => groupFn(route.group), [route.group]);
  const chartRunList = useMemo(() => chartRuns.data ?? [], [chartRuns.data]);
  const groupOptions = keys.data
    ? [
        ...keys.data.param_keys.map((k) => `params.${k}`),
        ...keys.data.tag_keys.filter((k) => !k.startsWith("mlflow.")).map((k) => `tags.${k}`),
        "status",
        "user_id",
      ]
    : [];
  const title = experiments.data?.map((e) => e.name).join(", ") ?? route.experimentIds.join(", ");
  const selCount = route.sel.length;
  const done = () => {
    setReloadKey((k) => k + 1);
  };

  return (
    <div class="page fill" id="runs-page">
      <div class="toolbar">
        <a href="#/experiments">Experiments</a>
        <span class="muted">/</span>
        <h1 id="experiment-title">{title}</h1>
        <span class="grow" />
        <div class="tabs">
          <button id="tab-table" class={route.tab === "table" ? "active" : ""} onClick={() => go({ tab: "table" })}>
            Table
          </button>
          <button id="tab-charts" class={route.tab === "charts" ? "active" : ""} onClick={() => go({ tab: "charts" })}>
            Charts
          </button>
        </div>
      </div>
      <ErrorBox error={experiments.error} />
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          go({ filter: filterText.trim() });
        }}
      >
        <input
          id="run-filter"
          class="mono"
          placeholder={"Filter: metrics.loss < 0.5 AND params.lr = '0.01' OR tags.team IN ('a', 'b')"}
          value={filterText}
          onInput={(e) => setFilterText(e.currentTarget.value)}
          style="flex:1;min-width:300px"
          aria-invalid={!!tableError}
        />
        <button type="submit" class="primary">
          Search
        </button>
        {route.filter && (
          <button type="button" onClick={() => go({ filter: "" })}>
            Clear
          </button>
        )}
        <select value={route.view} aria-label="Lifecycle" onChange={(e) => go({ view: e.currentTarget.value as ViewType })}>
          <option value="ACTIVE_ONLY">Active</option>
          <option value="DELETED_ONLY">Deleted</option>
          <option value="ALL">All</option>
        </select>
        <select
          id="group-by"
          aria-label="Group by"
          style="max-width:220px"
          value={route.group ?? ""}
          onChange={(e) => go({ group: e.currentTarget.value || null })}
        >
          <option value="">No grouping</option>
          {groupOptions.map((g) => (
            <option key={g} value={g}>
              Group by {g}
            </option>
          ))}
        </select>
        <label title="Show child runs under their parent (mlflow.parentRunId)">
          <input id="nest-runs" type="checkbox" checked={route.nest} onChange={(e) => go({ nest: e.currentTarget.checked })} /> nest
        </label>
        <ColumnPicker keys={keys.data} columns={columns} onChange={(cols) => go({ cols }, true)} />
      </form>
      {tableError && (
        <div class="error" id="filter-error" role="alert">
          {tableError.message}
        </div>
      )}
      <div class="toolbar" id="selection-bar">
        <span class="muted">{selCount ? `${selCount} selected` : "No runs selected"}</span>
        <button id="compare-selected" disabled={selCount < 2} onClick={() => navigate(compareRoute(route.sel))}>
          Compare
        </button>
        <button disabled={!selCount} onClick={() => go({ tab: "charts" })}>
          Chart
        </button>
        <button disabled={selCount !== 1} onClick={() => setAction("rename")}>
          Rename
        </button>
        <button disabled={!selCount} onClick={() => setAction("tag")}>
          Tag
        </button>
        {route.view !== "ACTIVE_ONLY" && (
          <button disabled={!selCount} onClick={() => setAction("restore")}>
            Restore
          </button>
        )}
        <button class="danger" disabled={!selCount} onClick={() => setAction("delete")}>
          Delete
        </button>
        {selCount > 0 && <button onClick={() => go({ sel: [] }, true)}>Clear selection</button>}
      </div>
      {route.tab === "table" ? (
        <RunsTable
          search={search}
          columns={columns}
          sort={route.sort}
          asc={route.asc}
          onSort={(sort, asc) => go({ sort, asc })}
          selected={selected}
          onSelect={onSelect}
          onOpen={(run) => navigate({ page: "run", runId: run.info.run_id, artifact: null })}
          groupBy={route.group}
          nest={route.nest}
          onLoaded={setLoaded}
          onError={setTableError}
          reloadKey={reloadKey}
        />
      ) : (
        <div style="overflow:auto;flex:1">
          <ErrorBox error={chartRuns.error} />
          <ChartsPanel
            runs={chartRunList}
            settings={route.chart}
            onSettings={(chart: ChartSettings) => go({ chart }, true)}
            groupOf={groupOf}
            note={
              route.sel.length
                ? `${route.sel.length} selected runs`
                : `The first ${route.group ? CHART_GROUPED_RUNS : CHART_DEFAULT_RUNS} runs of the search; select runs to chart others`
            }
          />
        </div>
      )}
      {action === "delete" && (
        <Dialog
          title={`Delete ${selCount} run(s)?`}
          confirm="Delete"
          danger
          onClose={() => setAction(null)}
          onSubmit={async () => {
            await forEach(route.sel, deleteRun);
            go({ sel: [] }, true);
            done();
          }}
        >
          <p class="muted">Deleted runs can be restored from the "Deleted" view.</p>
        </Dialog>
      )}
      {action === "restore" && (
        <Dialog
          title={`Restore ${selCount} run(s)?`}
          confirm="Restore"
          onClose={() => setAction(null)}
          onSubmit={async () => {
            await forEach(route.sel, restoreRun);
            done();
          }}
        />
      )}
      {action === "rename" && (
        <Dialog
          title="Rename run"
          label="New name"
          initial={loadedById.get(route.sel[0])?.info.run_name ?? ""}
          confirm="Rename"
          onClose={() => setAction(null)}
          onSubmit={async (name) => {
            await renameRun(route.sel[0], name.trim());
            done();
          }}
        />
      )}
      {action === "tag" && (
        <Dialog
          title={`Tag ${selCount} run(s)`}
          label="key=value"
          confirm="Set tag"
          onClose={() => setAction(null)}
          onSubmit={async (text) => {
            const i = text.indexOf("=");
            if (i <= 0) throw new Error("Write the tag as key=value");
            const key = text.slice(0, i).trim();
            const value = text.slice(i + 1).trim();
            await forEach(route.sel, (id) => setRunTag(id, key, value));
            done();
          }}
        />
      )}
    </div>
  );
}
