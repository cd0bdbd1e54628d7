// How one run's value for one column is displayed in tables.
import { latestMetric, paramValue, tagValue, type Column } from "../lib/columns";
import { formatDuration, formatNumber, formatTime, runDuration } from "../lib/format";
import type { Run } from "../lib/types";
import { Status } from "./common";

export interface MinMax {
  min?: number;
  max?: number;
}

/** Value used for display and for compare/scatter/parallel-coordinates (numbers when numeric). */
export function columnValue(run: Run, col: Column, summaries?: Map<string, MinMax>): string | number | undefined {
  switch (col.kind) {
    case "attr":
      switch (col.key) {
        case "run_name":
          return run.info.run_name;
        case "status":
          return run.info.status;
        case "start_time":
          return run.info.start_time;
        case "end_time":
          return run.info.end_time;
        case "duration":
          return runDuration(run.info.start_time, run.info.end_time, run.info.status);
        case "user_id":
          return run.info.user_id;
        case "source":
          return tagValue(run, "mlflow.source.name");
        case "run_id":
          return run.info.run_id;
      }
      return undefined;
    case "param":
      return paramValue(run, col.key);
    case "tag":
      return tagValue(run, col.key);
    case "metric":
      return latestMetric(run, col.key);
    case "metric.min":
      return summaries?.get(col.key)?.min;
    case "metric.max":
      return summaries?.get(col.key)?.max;
  }
}

export function isNumericColumn(col: Column): boolean {
  return col.kind.startsWith("metric") || (col.kind === "attr" && col.key === "duration");
}

export function CellValue({ run, col, summaries }: { run: Run; col: Column; summaries?: Map<string, MinMax> }) {
  const v = columnValue(run, col, summaries);
  if (col.kind === "attr") {
    if (col.key === "status") return <Status status={run.info.status} />;
    if (col.key === "start_time" || col.key === "end_time") return <span class="txt">{formatTime(v as number)}</span>;
    if (col.key === "duration") return <span class="txt">{formatDuration(v as number | undefined)}</span>;
    if (col.key === "source") {
      const s = String(v ?? "");
      return (
        <span class="txt" title={s}>
          {s.split(/[\\/]/).pop()}
        </span>
      );
    }
    if (col.key === "run_id") return <span class="txt mono">{String(v)}</span>;
  }
  if (typeof v === "number") return <span class="txt">{formatNumber(v)}</span>;
  if (v === undefined && (col.kind === "metric.min" || col.kind === "metric.max") && !summaries) {
    return <span class="placeholder">…</span>;
  }
  return (
    <span class="txt" title={v === undefined ? undefined : String(v)}>
      {v ?? ""}
    </span>
  );
}
