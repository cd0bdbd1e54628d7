import { useState } from "preact/hooks";
import { ATTRIBUTES, columnId, type ColumnKind } from "../lib/columns";
import type { ExperimentKeys } from "../lib/types";
import { useDismiss } from "./common";

interface Props {
  keys: ExperimentKeys | undefined;
  columns: string[];
  onChange: (columns: string[]) => void;
}

const SHOWN_PER_SECTION = 300;

/** Column picker with search: attributes, params, metrics (latest / min / max) and tags. */
export function ColumnPicker({ keys, columns, onChange }: Props) {
  const [open, setOpen] = useState(false);
  const [query, setQuery] = useState("");
  const ref = useDismiss(open, () => setOpen(false));
  const chosen = new Set(columns);
  const q = query.toLowerCase();
  const toggle = (id: string) => onChange(chosen.has(id) ? columns.filter((c) => c !== id) : [...columns, id]);
  const section = (title: string, kind: ColumnKind, names: string[], labels?: Record<string, string>) => {
    const matching = names.filter((n) => (labels?.[n] ?? n).toLowerCase().includes(q));
    if (!matching.length) return null;
    const ids = matching.map((n) => columnId(kind, n));
    const allOn = ids.every((id) => chosen.has(id));
    return (
      <div>
        <div class="section">
          {title} ({matching.length}){" "}
          <a
            href="#"
            onClick={(e) => {
              e.preventDefault();
              onChange(allOn ? columns.filter((c) => !ids.includes(c)) : [...columns, ...ids.filter((id) => !chosen.has(id))]);
            }}
          >
            {allOn ? "none" : "all"}
          </a>
        </div>
        {matching.slice(0, SHOWN_PER_SECTION).map((n, i) => (
          <label key={ids[i]}>
            <input type="checkbox" checked={chosen.has(ids[i])} onChange={() => toggle(ids[i])} />
            <span class="mono">{labels?.[n] ?? n}</span>
          </label>
        ))}
        {matching.length > SHOWN_PER_SECTION && (
          <div class="hint">…and {matching.length - SHOWN_PER_SECTION} more: refine the search</div>
        )}
      </div>
    );
  };
  const attrLabels = Object.fromEntries(ATTRIBUTES.map((a) => [a.key, a.label]));
  return (
    <div style="position:relative" ref={ref}>
      <button id="column-picker" onClick={() => setOpen(!open)} aria-expanded={open}>
        Columns ({columns.length})
      </button>
      {open && (
        <div class="popover picker" style="right:0;top:30px">
          <input
            type="search"
            id="column-search"
            placeholder="Search columns"
            value={query}
            onInput={(e) => setQuery(e.currentTarget.value)}
            style="width:100%"
            autoFocus
          />
          {section("Attributes", "attr", ATTRIBUTES.map((a) => a.key), attrLabels)}
          {section("Metrics (latest)", "metric", keys?.metric_keys ?? [])}
          {section("Metrics (min)", "metric.min", keys?.metric_keys ?? [])}
          {section("Metrics (max)", "metric.max", keys?.metric_keys ?? [])}
          {section("Params", "param", keys?.param_keys ?? [])}
          {section("Tags", "tag", keys?.tag_keys ?? [])}
        </div>
      )}
    </div>
  );
}
