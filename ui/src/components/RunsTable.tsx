import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import { countRuns, metricSummaries, runGroups, searchRuns, type RunSearch } from "../lib/api";
import { columnLabel, columnWidth, parseColumnId, quoteKey, quoteValue, searchIdentifier, type Column } from "../lib/columns";
import { formatNumber } from "../lib/format";
import { startPolling } from "../lib/poll";
import { RunLoader } from "../lib/runLoader";
import type { Run, RunGroup } from "../lib/types";
import { CellValue, isNumericColumn, type MinMax } from "./cells";
import { ErrorBox } from "./common";
import { VirtualGrid, type GridColumn } from "./VirtualGrid";

export type DisplayRow =
  | { kind: "run"; run: Run; depth: number; children?: number; expanded?: boolean }
  | { kind: "placeholder"; index: number }
  | { kind: "group"; group: RunGroup; expanded: boolean }
  | { kind: "more"; groupValue: string | null };

interface Props {
  search: RunSearch;
  columns: string[];
  sort: string | null;
  asc: boolean;
  onSort: (column: string, asc: boolean) => void;
  selected: Set<string>;
  onSelect: (ids: string[], on: boolean) => void;
  onOpen: (run: Run) => void;
  groupBy: string | null;
  nest: boolean;
  /** Loaded runs in display order, for "select all loaded" and charts of visible runs. */
  onLoaded: (runs: Run[]) => void;
  onError: (error: Error | null) => void;
  /** Changing it reloads the table (after deletes, renames, tags). */
  reloadKey: number;
}

const PARENT_TAG = "mlflow.parentRunId";

/** `a AND b` for two optional filters (parentheses keep OR inside the user's filter intact). */
export function andFilter(a: string | undefined, b: string): string {
  return a && a.trim() ? `(${a}) AND ${b}` : b;
}

/** The filter selecting one group's runs. */
export function groupFilter(groupBy: string, value: string | null): string {
  const [kind, ...rest] = groupBy.split(".");
  const key = rest.join(".");
  const ident = kind === "params" ? `params.${quoteKey(key)}` : kind === "tags" ? `tags.${quoteKey(key)}` : `attributes.${groupBy}`;
  return value === null ? `${ident} IS NULL` : `${ident} = ${quoteValue(value)}`;
}

function useVersion(): [number, () => void] {
  const [v, setV] = useState(0);
  return [v, useCallback(() => setV((x) => x + 1), [])];
}

export function RunsTable(props: Props) {
  const { search, nest, groupBy } = props;
  const searchKey = JSON.stringify(search);
  const [version, bump] = useVersion();
  const [count, setCount] = useState<number | null>(null);
  const [newRuns, setNewRuns] = useState(0);
  const newest = useRef<number | null>(null);
  const newCount = useRef(0);
  const [focused, setFocused] = useState(-1);
  const [children, setChildren] = useState<Map<string, Run[]>>(new Map());
  const [expanded, setExpanded] = useState<Set<string>>(new Set());
  const [groups, setGroups] = useState<RunGroup[] | null>(null);
  const [groupLoaders, setGroupLoaders] = useState<Map<string, RunLoader>>(new Map());
  const [summaries, setSummaries] = useState<Map<string, Map<string, MinMax>>>(new Map());
  const [reloadNonce, setReloadNonce] = useState(0);
  const columns = useMemo(() => props.columns.map(parseColumnId).filter((c): c is Column => c !== null), [props.columns]);
  const metricKeys = useMemo(() => [...new Set(columns.filter((c) => c.kind === "metric").map((c) => c.key))], [columns]);
  const minMaxKeys = useMemo(
    () => [...new Set(columns.filter((c) => c.kind === "metric.min" || c.kind === "metric.max").map((c) => c.key))],
    [columns],
  );

  // The main (flat or parents-only) loader: rebuilt when the search changes.
  const loaderSearch = useMemo<RunSearch>(
    () => (nest ? { ...search, filter: andFilter(search.filter, `tags.${quoteKey(PARENT_TAG)} IS NULL`) } : search),
    [searchKey, nest],
  );
  const loader = useMemo(() => new RunLoader(loaderSearch, bump), [loaderSearch, bump, reloadNonce, props.reloadKey]);
  useEffect(() => () => loader.cancel(), [loader]);
  useEffect(() => {
    setCount(null);
    setNewRuns(0);
    setChildren(new Map());
    setExpanded(new Set());
    setFocused(-1);
    if (groupBy) return;
    loader.ensure(0);
    countRuns(loaderSearch).then(setCount, () => setCount(null));
    // The newest start time now: runs started later are "new" (counting only those is cheap).
    newest.current = null;
    newCount.current = 0;
    searchRuns({ ...loaderSearch, orderBy: ["attributes.start_time DESC"] }, undefined, 1).then(
      (p) => (newest.current = p.items[0]?.info.start_time ?? 0),
      () => undefined,
    );
  }, [loader, groupBy]);
  useEffect(() => props.onError(loader.error), [loader.error, version]);

  // Groups: one aggregate request, then a loader per expanded group.
  useEffect(() => {
    setGroups(null);
    setGroupLoaders(new Map());
    if (!groupBy) return;
    runGroups(search, groupBy, metricKeys).then(setGroups, (e) => props.onError(e));
  }, [searchKey, groupBy, metricKeys.join("\u0000"), props.reloadKey]);

  // Children of the loaded parents, one IN query per page of parents.
  useEffect(() => {
    if (!nest || groupBy) return;
    const missing = loader.rows.map((r) => r.info.run_id).filter((id) => !children.has(id));
    if (!missing.length) return;
    let cancelled = false;
    (async () => {
      const found = new Map<string, Run[]>(missing.map((id) => [id, []]));
      for (let i = 0; i < missing.length; i += 500) {
        const ids = missing.slice(i, i + 500).map(quoteValue).join(", ");
        const filter = andFilter(search.filter, `tags.${quoteKey(PARENT_TAG)} IN (${ids})`);
        let token: string | undefined;
        do {
          const page = await searchRuns({ ...search, filter }, token, 1000);
          for (const run of page.items) {
            const parent = run.data.tags?.find((t) => t.key === PARENT_TAG)?.value;
            if (parent) found.get(parent)?.push(run);
          }
          token = page.nextPageToken;
        } while (token && !cancelled);
      }
      if (!cancelled) setChildren((c) => new Map([...c, ...found]));
    })().catch((e) => props.onError(e));
    return () => {
      cancelled = true;
    };
  }, [nest, groupBy, loader, loader.rows.length]);

  const rows = useMemo<DisplayRow[]>(() => {
    const out: DisplayRow[] = [];
    if (groupBy) {
      for (const g of groups ?? []) {
        const key = JSON.stringify(g.value);
        const gl = groupLoaders.get(key);
        out.push({ kind: "group", group: g, expanded: !!gl });
        if (gl) {
          for (const run of gl.rows) out.push({ kind: "run", run, depth: 1 });
          if (!gl.done) out.push({ kind: "more", groupValue: g.value });
        }
      }
      return out;
    }
    for (const run of loader.rows) {
      const kids = children.get(run.info.run_id);
      const open = expanded.has(run.info.run_id);
      out.push({ kind: "run", run, depth: 0, children: nest ? kids?.length : undefined, expanded: open });
      if (nest && open && kids) for (const kid of kids) out.push({ kind: "run", run: kid, depth: 1 });
    }
    const total = loader.done ? loader.rows.length : Math.max(count ?? 0, loader.rows.length + (loader.error ? 0 : 1));
    for (let i = loader.rows.length; i < total; i++) out.push({ kind: "placeholder", index: i });
    return out;
  }, [version, loader, groups, groupLoaders, children, expanded, count, nest, groupBy]);

  const loadedRuns = useMemo(() => rows.flatMap((r) => (r.kind === "run" ? [r.run] : [])), [rows]);
  useEffect(() => props.onLoaded(loadedRuns), [loadedRuns]);

  // Min/max columns: summaries of the rows in view, fetched after scrolling settles.
  const range = useRef<[number, number]>([0, 0]);
  const summaryTimer = useRef<ReturnType<typeof setTimeout>>();
  const fetchSummaries = useCallback(() => {
    if (!minMaxKeys.length) return;
    const [a, b] = range.current;
    const ids = rows
      .slice(a, b + 1)
      .flatMap((r) => (r.kind === "run" ? [r.run.info.run_id] : []))
      .filter((id) => minMaxKeys.some((k) => !summaries.get(id)?.has(k)));
    if (!ids.length) return;
    metricSummaries(ids, minMaxKeys).then((list) => {
      setSummaries((prev) => {
        const next = new Map(prev);
        for (const id of ids) {
          const m = new Map(next.get(id) ?? []);
          for (const k of minMaxKeys) if (!m.has(k)) m.set(k, {});
          next.set(id, m);
        }
        for (const s of list) next.get(s.run_id)!.set(s.key, { min: s.min, max: s.max });
        return next;
      });
    }, props.onError);
  }, [rows, minMaxKeys, summaries]);
  useEffect(() => {
    clearTimeout(summaryTimer.current);
    summaryTimer.current = setTimeout(fetchSummaries, 150);
  }, [fetchSummaries]);

  const onRange = useCallback(
    (first: number, last: number) => {
      range.current = [first, last];
      if (!groupBy) loader.ensure(last);
      clearTimeout(summaryTimer.current);
      summaryTimer.current = setTimeout(fetchSummaries, 150);
    },
    [loader, groupBy, fetchSummaries],
  );

  // Live: refresh the running runs in view (backoff while nothing changes) and notice new runs.
  const rowsRef = useRef(rows);
  rowsRef.current = rows;
  useEffect(() => {
    if (groupBy) return;
    return startPolling(async () => {
      let changed = false;
      const [a, b] = range.current;
      const running = rowsRef.current
        .slice(a, b + 1)
        .flatMap((r) => (r.kind === "run" && r.run.info.status === "RUNNING" ? [r.run.info.run_id] : []));
      if (running.length) {
        const filter = `attributes.run_id IN (${running.map(quoteValue).join(", ")})`;
        const page = await searchRuns({ ...search, filter, viewType: "ALL" }, undefined, 200);
        changed = loader.update(page.items);
      }
      if (newest.current !== null) {
        const filter = andFilter(loaderSearch.filter, `attributes.start_time > ${newest.current}`);
        const n = await countRuns({ ...loaderSearch, filter });
        changed ||= n !== newCount.current;
        newCount.current = n;
        setNewRuns(n);
      }
      return changed;
    });
  }, [loader, groupBy]);

  const toggleExpand = (row: DisplayRow) => {
    if (row.kind === "group") {
      const key = JSON.stringify(row.group.value);
      setGroupLoaders((prev) => {
        const next = new Map(prev);
        if (next.has(key)) {
          next.get(key)!.cancel();
          next.delete(key);
        } else {
          const gl = new RunLoader({ ...search, filter: andFilter(search.filter, groupFilter(groupBy!, row.group.value)) }, bump);
          gl.ensure(0);
          next.set(key, gl);
        }
        return next;
      });
    } else if (row.kind === "run" && row.children) {
      const id = row.run.info.run_id;
      setExpanded((prev) => {
        const next = new Set(prev);
        if (next.has(id)) next.delete(id);
        else next.add(id);
        return next;
      });
    }
  };

  const groupStats = (g: RunGroup, col: Column) => {
    if (col.kind !== "metric") return null;
    const s = g.metrics?.find((m) => m.key === col.key);
    if (!s) return null;
    return (
      <span class="txt" title={`n=${s.count}, min ${formatNumber(s.min)}, max ${formatNumber(s.max)}`}>
        {formatNumber(s.mean)}
        {s.std !== undefined && <span class="muted"> ± {formatNumber(s.std)}</span>}
      </span>
    );
  };

  const sortable = (col: Column) => searchIdentifier(col) !== null;
  const gridColumns: GridColumn[] = [
    {
      id: "__select",
      width: 34,
      frozen: true,
      header: (
        <input
          type="checkbox"
          aria-label="Select all loaded runs"
          checked={loadedRuns.length > 0 && loadedRuns.every((r) => props.selected.has(r.info.run_id))}
          onChange={(e) => props.onSelect(loadedRuns.map((r) => r.info.run_id), e.currentTarget.checked)}
        />
      ),
    },
    ...columns.map<GridColumn>((col, i) => ({
      id: col.id,
      width: groupBy && col.kind === "metric" ? Math.max(170, columnWidth(col)) : columnWidth(col),
      frozen: i === 0 && col.kind === "attr" && col.key === "run_name",
      numeric: isNumericColumn(col),
      title: `${col.kind === "attr" ? "" : col.kind + " "}${col.key}${sortable(col) ? " — click to sort" : ""}`,
      onHeaderClick: sortable(col) ? () => props.onSort(col.id, props.sort === col.id ? !props.asc : false) : undefined,
      header: (
        <>
          {col.kind !== "attr" && <span class="kind">{col.kind.replace("metric", "m").replace("param", "p")}</span>}
          <span class="txt">{columnLabel(col)}</span>
          {props.sort === col.id && <span aria-label={props.asc ? "ascending" : "descending"}>{props.asc ? "▲" : "▼"}</span>}
        </>
      ),
    })),
  ];

  const renderCell = (r: number, gc: GridColumn) => {
    const row = rows[r];
    if (!row) return null;
    if (gc.id === "__select") {
      if (row.kind !== "run") return null;
      const id = row.run.info.run_id;
      return (
        <input
          type="checkbox"
          aria-label={`Select ${row.run.info.run_name}`}
          checked={props.selected.has(id)}
          onChange={(e) => props.onSelect([id], e.currentTarget.checked)}
        />
      );
    }
    const col = parseColumnId(gc.id)!;
    const first = gc.id === columns[0]?.id;
    if (row.kind === "placeholder") return first ? <span class="placeholder">loading…</span> : null;
    if (row.kind === "more") {
      return first ? (
        <button
          onClick={() => {
            const gl = groupLoaders.get(JSON.stringify(row.groupValue));
            gl?.ensure(gl.rows.length + 200);
          }}
        >
          Load more
        </button>
      ) : null;
    }
    if (row.kind === "group") {
      if (first) {
        return (
          <>
            <button class="toggle" aria-label={row.expanded ? "Collapse group" : "Expand group"} onClick={() => toggleExpand(row)}>
              {row.expanded ? "▾" : "▸"}
            </button>
            <span class="txt">
              {groupBy}: {row.group.value ?? <em class="muted">(none)</em>}
            </span>
            <span class="badge">{row.group.count}</span>
          </>
        );
      }
      return groupStats(row.group, col);
    }
    if (first && col.kind === "attr" && col.key === "run_name") {
      const run = row.run;
      return (
        <>
          <span class="indent" style={{ width: row.depth * 16 }} />
          {nest &&
            !groupBy &&
            row.depth === 0 &&
            (row.children ? (
              <button class="toggle" aria-label={row.expanded ? "Hide child runs" : "Show child runs"} onClick={() => toggleExpand(row)}>
                {row.expanded ? "▾" : "▸"}
              </button>
            ) : (
              <span class="toggle" />
            ))}
          <a class="txt run-link" href={`#/run/${run.info.run_id}`} title={run.info.run_name}>
            {run.info.run_name || run.info.run_id}
          </a>
          {row.children ? <span class="badge">{row.children}</span> : null}
        </>
      );
    }
    return <CellValue run={row.run} col={col} summaries={minMaxKeys.length ? summaries.get(row.run.info.run_id) : undefined} />;
  };

  const status = groupBy
    ? groups
      ? `${groups.length} groups`
      : "grouping…"
    : `${loader.rows.length.toLocaleString()}${loader.done ? "" : count !== null ? ` of ${count.toLocaleString()}` : "+"} runs loaded`;

  return (
    <>
      <div class="toolbar hint" id="runs-status">
        <span>{status}</span>
        {count !== null && !groupBy && <span id="run-count">{count.toLocaleString()} matching</span>}
        {newRuns > 0 && (
          <button onClick={() => setReloadNonce((n) => n + 1)} id="refresh-runs">
            {newRuns} new — refresh
          </button>
        )}
        <span class="grow" />
        <span>
          <span class="kbd">↑</span>/<span class="kbd">↓</span> move · <span class="kbd">Enter</span> open ·{" "}
          <span class="kbd">x</span> select
        </span>
      </div>
      {loader.error && <ErrorBox error={loader.error} />}
      <VirtualGrid
        id="runs-grid"
        columns={gridColumns}
        rowCount={rows.length}
        renderCell={renderCell}
        rowKey={(r) => {
          const row = rows[r];
          return row.kind === "run"
            ? `${row.depth}:${row.run.info.run_id}`
            : row.kind === "group"
              ? `g:${JSON.stringify(row.group.value)}`
              : `${row.kind}:${r}`;
        }}
        rowClass={(r) => {
          const row = rows[r];
          if (row.kind === "group") return "group";
          if (row.kind !== "run") return "";
          return `${props.selected.has(row.run.info.run_id) ? "selected" : ""}${row.run.info.lifecycle_stage === "deleted" ? " deleted" : ""}`;
        }}
        rowAttrs={(r) => {
          const row = rows[r];
          return row.kind === "run" ? { "data-run-id": row.run.info.run_id } : ({} as Record<string, string>);
        }}
        onRange={onRange}
        focused={focused}
        onFocus={setFocused}
        onOpen={(r) => {
          const row = rows[r];
          if (row?.kind === "run") props.onOpen(row.run);
          else if (row?.kind === "group") toggleExpand(row);
        }}
        onToggle={(r) => {
          const row = rows[r];
          if (row?.kind === "run") props.onSelect([row.run.info.run_id], !props.selected.has(row.run.info.run_id));
        }}
      />
    </>
  );
}
