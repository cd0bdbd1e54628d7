import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "../lib/api";

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const e = error as Error;
  const code = e instanceof ApiError ? `${e.code}: ` : "";
  return (
    <div class="error-box" role="alert">
      {code}
      {e.message ?? String(error)}
    </div>
  );
}

export function Status({ status }: { status: string }) {
  return <span class={`status ${status}`}>{status}</span>;
}

export function Loading({ what = "Loading" }: { what?: string }) {
  return <div class="muted">{what}…</div>;
}

/** A modal asking for a line of text (create / rename) or a confirmation (empty `initial` and no input). */
export function Dialog(props: {
  title: string;
  label?: string;
  initial?: string;
  confirm: string;
  danger?: boolean;
  onSubmit: (value: string) => Promise<unknown>;
  onClose: () => void;
  children?: ComponentChildren;
}) {
  const [value, setValue] = useState(props.initial ?? "");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.select(), []);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await props.onSubmit(value);
      props.onClose();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="dialog-backdrop" onClick={(e) => e.target === e.currentTarget && props.onClose()}>
      <form class="dialog" onSubmit={submit} onKeyDown={(e) => e.key === "Escape" && props.onClose()}>
        <h2>{props.title}</h2>
        {props.children}
        {props.label !== undefined && (
          <label style="display:flex;flex-direction:column;gap:4px">
            <span class="muted">{props.label}</span>
            <input ref={input} value={value} onInput={(e) => setValue(e.currentTarget.value)} autoFocus />
          </label>
        )}
        <ErrorBox error={error} />
        <div class="actions">
          <button type="button" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" class={props.danger ? "danger" : "primary"} disabled={busy}>
            {props.confirm}
          </button>
        </div>
      </form>
    </div>
  );
}

/** Close a popover when the user clicks outside it or presses Escape. */
export function useDismiss(open: boolean, close: () => void) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!open) return;
    const onDown = (e: MouseEvent) => {
      if (ref.current && !ref.current.contains(e.target as Node)) close();
    };
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && close();
    document.addEventListener("mousedown", onDown);
    document.addEventListener("keydown", onKey);
    return () => {
      document.removeEventListener("mousedown", onDown);
      document.removeEventListener("keydown", onKey);
    };
  }, [open, close]);
  return ref;
}
