// Runs-table columns: ids (also used in the URL), labels, cell values and the search-language expressions
// used to sort and filter on them.
import type { Run } from "./types";

export type ColumnKind = "attr" | "param" | "metric" | "metric.min" | "metric.max" | "tag";

export interface Column {
  id: string;
  kind: ColumnKind;
  key: string;
}

/** Attribute columns, in display order. `sort` is the order_by identifier, absent when the server cannot sort. */
export const ATTRIBUTES: { key: string; label: string; sort?: string; width: number }[] = [
  { key: "run_name", label: "Run name", sort: "attributes.run_name", width: 220 },
  { key: "status", label: "Status", sort: "attributes.status", width: 96 },
  { key: "start_time", label: "Started", sort: "attributes.start_time", width: 160 },
  { key: "duration", label: "Duration", width: 90 },
  { key: "user_id", label: "User", sort: "attributes.user_id", width: 100 },
  { key: "source", label: "Source", sort: "tags.`mlflow.source.name`", width: 160 },
  { key: "run_id", label: "Run ID", sort: "attributes.run_id", width: 120 },
  { key: "end_time", label: "Ended", sort: "attributes.end_time", width: 160 },
];

export const DEFAULT_ATTRIBUTE_COLUMNS = ["run_name", "status", "start_time", "duration", "user_id", "source"];

export function columnId(kind: ColumnKind, key: string): string {
  return `${kind}:${key}`;
}

export function parseColumnId(id: string): Column | null {
  const i = id.indexOf(":");
  if (i < 0) return null;
  const kind = id.slice(0, i) as ColumnKind;
  if (!["attr", "param", "metric", "metric.min", "metric.max", "tag"].includes(kind)) return null;
  return { id, kind, key: id.slice(i + 1) };
}

/** A search-language key, always quoted with backticks (so any character is allowed). */
export function quoteKey(key: string): string {
  return "`" + key.replaceAll("`", "``") + "`";
}

/** A search-language string literal. */
export function quoteValue(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** The identifier of a column in the search language (for order_by and filters), or null if not sortable. */
export function searchIdentifier(col: Column): string | null {
  switch (col.kind) {
    case "attr":
      return ATTRIBUTES.find((a) => a.key === col.key)?.sort ?? null;
    case "param":
      return `params.${quoteKey(col.key)}`;
    case "metric":
      return `metrics.${quoteKey(col.key)}`;
    case "metric.min":
      return `metrics.${quoteKey(col.key)}.min`;
    case "metric.max":
      return `metrics.${quoteKey(col.key)}.max`;
    case "tag":
      return `tags.${quoteKey(col.key)}`;
  }
}

export function orderBy(sortColumn: string | null, ascending: boolean): string[] | undefined {
  const col = sortColumn ? parseColumnId(sortColumn) : null;
  const ident = col ? searchIdentifier(col) : null;
  return ident ? [`${ident} ${ascending ? "ASC" : "DESC"}`] : undefined;
}

export function columnLabel(col: Column): string {
  switch (col.kind) {
    case "attr":
      return ATTRIBUTES.find((a) => a.key === col.key)?.label ?? col.key;
    case "metric.min":
      return `${col.key} (min)`;
    case "metric.max":
      return `${col.key} (max)`;
    default:
      return col.key;
  }
}

export function columnWidth(col: Column): number {
  if (col.kind === "attr") return ATTRIBUTES.find((a) => a.key === col.key)?.width ?? 120;
  return Math.min(220, Math.max(90, columnLabel(col).length * 8 + 40));
}

export function tagValue(run: Run, key: string): string | undefined {
  return run.data.tags?.find((t) => t.key === key)?.value;
}

export function paramValue(run: Run, key: string): string | undefined {
  return run.data.params?.find((p) => p.key === key)?.value;
}

export function latestMetric(run: Run, key: string): number | undefined {
  const m = run.data.metrics?.find((x) => x.key === key);
  return m === undefined ? undefined : toNumber(m.value);
}

/** Wire doubles: numbers, or "NaN" / "Infinity" / "-Infinity" strings. */
export function toNumber(v: number | string): number {
  return typeof v === "number" ? v : Number(v);
}

/** The columns shown when the URL names none: the usual attributes, every metric, then every param. */
export function defaultColumns(metricKeys: string[], paramKeys: string[]): string[] {
  return [
    ...DEFAULT_ATTRIBUTE_COLUMNS.map((k) => columnId("attr", k)),
    ...metricKeys.map((k) => columnId("metric", k)),
    ...paramKeys.map((k) => columnId("param", k)),
  ];
}
