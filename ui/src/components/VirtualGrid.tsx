import type { ComponentChildren, VNode } from "preact";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";

export interface GridColumn {
  id: string;
  width: number;
  header: ComponentChildren;
  frozen?: boolean;
  numeric?: boolean;
  onHeaderClick?: () => void;
  title?: string;
}

interface Props {
  id?: string;
  columns: GridColumn[];
  rowCount: number;
  rowHeight?: number;
  renderCell: (row: number, col: GridColumn) => ComponentChildren;
  rowClass?: (row: number) => string;
  rowKey?: (row: number) => string;
  rowAttrs?: (row: number) => Record<string, string>;
  /** Called with the first and last row index in view (plus overscan) whenever they change. */
  onRange?: (first: number, last: number) => void;
  focused: number;
  onFocus: (row: number) => void;
  onOpen?: (row: number) => void;
  onToggle?: (row: number) => void;
}

const HEADER = 30;
const OVERSCAN_ROWS = 10;
const OVERSCAN_PX = 300;

/** Which columns intersect [left, right] (frozen columns are always drawn and excluded here). */
export function visibleColumnRange(widths: number[], left: number, right: number): [number, number] {
  let x = 0;
  let first = widths.length;
  let last = -1;
  for (let i = 0; i < widths.length; i++) {
    const end = x + widths[i];
    if (end >= left && x <= right) {
      if (first > i) first = i;
      last = i;
    }
    x = end;
  }
  return [first, last];
}

/**
 * A grid virtualised in both directions: only rows and columns in view (plus overscan) are in the DOM,
 * so 100,000 rows × thousands of columns scroll smoothly. Frozen columns stick to the left edge. The grid
 * is focusable: ↑/↓/PgUp/PgDn/Home/End move the focused row, Enter opens it, Space or x toggles it.
 */
export function VirtualGrid(props: Props): VNode {
  const rowHeight = props.rowHeight ?? 28;
  const box = useRef<HTMLDivElement>(null);
  const [view, setView] = useState({ top: 0, left: 0, height: 600, width: 1200 });
  useEffect(() => {
    const el = box.current!;
    const update = () =>
      setView({ top: el.scrollTop, left: el.scrollLeft, height: el.clientHeight, width: el.clientWidth });
    update();
    const ro = new ResizeObserver(update);
    ro.observe(el);
    el.addEventListener("scroll", update, { passive: true });
    return () => {
      ro.disconnect();
      el.removeEventListener("scroll", update);
    };
  }, []);

  const frozen = props.columns.filter((c) => c.frozen);
  const scrolling = props.columns.filter((c) => !c.frozen);
  const frozenWidth = frozen.reduce((a, c) => a + c.width, 0);
  const widths = useMemo(() => scrolling.map((c) => c.width), [scrolling]);
  const totalWidth = frozenWidth + widths.reduce((a, w) => a + w, 0);
  const [c0, c1] = visibleColumnRange(widths, view.left - OVERSCAN_PX, view.left + view.width - frozenWidth + OVERSCAN_PX);
  const leftPad = widths.slice(0, c0).reduce((a, w) => a + w, 0);
  const shown = c1 >= c0 ? scrolling.slice(c0, c1 + 1) : [];
  const r0 = Math.max(0, Math.floor((view.top - HEADER) / rowHeight) - OVERSCAN_ROWS);
  const r1 = Math.min(props.rowCount - 1, Math.ceil((view.top + view.height) / rowHeight) + OVERSCAN_ROWS);

  const onRange = props.onRange;
  useEffect(() => {
    if (onRange && props.rowCount > 0) onRange(r0, r1);
  }, [r0, r1, props.rowCount, onRange]);

  const frozenLeft: number[] = [];
  frozen.reduce((x, c) => (frozenLeft.push(x), x + c.width), 0);

  const scrollToRow = (row: number) => {
    const el = box.current!;
    const top = HEADER + row * rowHeight;
    if (top - HEADER < el.scrollTop) el.scrollTop = top - HEADER;
    else if (top + rowHeight > el.scrollTop + el.clientHeight) el.scrollTop = top + rowHeight - el.clientHeight;
  };
  const onKeyDown = (e: KeyboardEvent) => {
    if ((e.target as HTMLElement).closest("input,button,select,textarea,a")) return;
    const page = Math.max(1, Math.floor(view.height / rowHeight) - 1);
    const moves: Record<string, number> = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page, j: 1, k: -1 };
    let next: number | null = null;
    if (e.key in moves) next = (props.focused < 0 ? 0 : props.focused + moves[e.key]);
    else if (e.key === "Home") next = 0;
    else if (e.key === "End") next = props.rowCount - 1;
    else if (e.key === "Enter" && props.focused >= 0) props.onOpen?.(props.focused);
    else if ((e.key === " " || e.key === "x") && props.focused >= 0) props.onToggle?.(props.focused);
    else return;
    e.preventDefault();
    if (next !== null && props.rowCount > 0) {
      next = Math.max(0, Math.min(props.rowCount - 1, next));
      props.onFocus(next);
      scrollToRow(next);
    }
  };

  const cells = (render: (c: GridColumn) => ComponentChildren, header: boolean) => [
    ...frozen.map((c, i) => (
      <div
        key={c.id}
        class={`vcell frozen${c.numeric ? " num" : ""}${header && c.onHeaderClick ? " sortable" : ""}`}
        style={{ width: c.width, left: frozenLeft[i] }}
        title={header ? c.title : undefined}
        onClick={header ? c.onHeaderClick : undefined}
      >
        {render(c)}
      </div>
    )),
    <div key="__pad" style={{ width: leftPad, flex: "none" }} />,
    ...shown.map((c) => (
      <div
        key={c.id}
        class={`vcell${c.numeric ? " num" : ""}${header && c.onHeaderClick ? " sortable" : ""}`}
        style={{ width: c.width }}
        title={header ? c.title : undefined}
        onClick={header ? c.onHeaderClick : undefined}
      >
        {render(c)}
      </div>
    )),
  ];

  const rows: VNode[] = [];
  for (let r = r0; r <= r1; r++) {
    const cls = props.rowClass?.(r) ?? "";
    rows.push(
      <div
        key={props.rowKey?.(r) ?? r}
        class={`vrow ${cls}${r === props.focused ? " focused" : ""}`}
        style={{ top: r * rowHeight, width: totalWidth, height: rowHeight }}
        onMouseDown={() => props.onFocus(r)}
        {...(props.rowAttrs?.(r) ?? {})}
      >
        {cells((c) => props.renderCell(r, c), false)}
      </div>,
    );
  }
  return (
    <div class="vgrid" id={props.id} ref={box} tabIndex={0} onKeyDown={onKeyDown} role="grid" aria-rowcount={props.rowCount}>
      <div class="vhead" style={{ width: totalWidth }} role="row">
        {cells((c) => c.header, true)}
      </div>
      <div class="vbody" style={{ height: props.rowCount * rowHeight, width: totalWidth }}>
        {rows}
      </div>
    </div>
  );
}
