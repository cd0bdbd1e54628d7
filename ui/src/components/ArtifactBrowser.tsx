import { useEffect, useState } from "preact/hooks";
import { artifactUrl, listArtifacts, readArtifactText } from "../lib/api";
import { parseCsv } from "../lib/csv";
import { formatBytes } from "../lib/format";
import type { FileInfo } from "../lib/types";
import { ErrorBox, Loading } from "./common";
import { Markdown } from "./Markdown";

const TEXT_PREVIEW_BYTES = 1 << 20;
const HTML_PREVIEW_BYTES = 8 << 20;

export type PreviewKind = "image" | "html" | "json" | "csv" | "tsv" | "markdown" | "text" | "none";

const IMAGE = new Set(["png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "avif"]);
const TEXT = new Set([
  "txt", "log", "yaml", "yml", "py", "sh", "toml", "ini", "cfg", "conf", "xml", "js", "ts", "sql", "r", "java",
  "scala", "go", "rs", "c", "h", "cpp", "ipynb", "jsonl", "ndjson", "properties", "env", "out", "err",
]);
const TEXT_NAMES = new Set(["MLmodel", "requirements.txt", "conda.yaml", "python_env.yaml", "Dockerfile", "LICENSE", "README"]);

export function previewKind(path: string): PreviewKind {
  const name = path.split("/").pop() ?? path;
  const dot = name.lastIndexOf(".");
  const ext = dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
  if (IMAGE.has(ext)) return "image";
  if (ext === "html" || ext === "htm") return "html";
  if (ext === "json") return "json";
  if (ext === "csv") return "csv";
  if (ext === "tsv") return "tsv";
  if (ext === "md" || ext === "markdown") return "markdown";
  if (TEXT.has(ext) || TEXT_NAMES.has(name)) return "text";
  return "none";
}

function TextPreview({ runId, path, kind }: { runId: string; path: string; kind: PreviewKind }) {
  const [state, setState] = useState<{ text: string; truncated: boolean } | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    setState(null);
    setError(null);
    readArtifactText(runId, path, kind === "html" ? HTML_PREVIEW_BYTES : TEXT_PREVIEW_BYTES).then(setState, setError);
  }, [runId, path, kind]);
  if (error) return <ErrorBox error={error} />;
  if (!state) return <Loading />;
  const note = state.truncated && <p class="hint">Showing the first {formatBytes(TEXT_PREVIEW_BYTES)}; download for the rest.</p>;
  if (kind === "html") {
    // No allow-same-origin: the page runs in an opaque origin and cannot reach the tracking API.
    return <iframe title={path} sandbox="allow-scripts" srcdoc={state.text} referrerpolicy="no-referrer" />;
  }
  if (kind === "json" && !state.truncated) {
    try {
      return <pre class="json-preview">{JSON.stringify(JSON.parse(state.text), null, 2)}</pre>;
    } catch {
      // not valid JSON: show the text as it is
    }
  }
  if (kind === "csv" || kind === "tsv") {
    const { rows, truncated } = parseCsv(state.text, kind === "tsv" ? "\t" : ",", 500);
    const [head, ...body] = rows;
    return (
      <div>
        {note}
        {(truncated || state.truncated) && <p class="hint">Showing the first {rows.length - 1} rows.</p>}
        <table class="simple csv-preview">
          <thead>
            <tr>{head?.map((h, i) => <th key={i}>{h}</th>)}</tr>
          </thead>
          <tbody>
            {body.map((r, i) => (
              <tr key={i}>
                {r.map((c, j) => (
                  <td key={j}>{c}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    );
  }
  if (kind === "markdown") return <Markdown source={state.text} />;
  return (
    <div>
      {note}
      <pre class="text-preview">{state.text}</pre>
    </div>
  );
}

function Preview({ runId, file }: { runId: string; file: FileInfo }) {
  const kind = previewKind(file.path);
  const url = artifactUrl(runId, file.path);
  return (
    <div class="preview" id="artifact-preview">
      <div class="toolbar" style="margin-bottom:8px">
        <strong class="mono">{file.path}</strong>
        <span class="muted">{formatBytes(file.file_size)}</span>
        <span class="grow" />
        <a href={url} download={file.path.split("/").pop()} id="artifact-download">
          Download
        </a>
      </div>
      {kind === "image" ? (
        <img src={url} alt={file.path} />
      ) : kind === "none" ? (
        <p class="muted">No preview for this file type.</p>
      ) : (
        <TextPreview runId={runId} path={file.path} kind={kind} />
      )}
    </div>
  );
}

function FileIcon({ dir }: { dir: boolean }) {
  return (
    <svg width="14" height="14" viewBox="0 0 16 16" aria-hidden="true" style="flex:none">
      {dir ? (
        <path d="M1 3h5l2 2h7v8H1z" fill="var(--warn)" opacity="0.8" />
      ) : (
        <path d="M3 1h7l3 3v11H3z" fill="none" stroke="var(--fg-2)" stroke-width="1.2" />
      )}
    </svg>
  );
}

function Dir(props: {
  runId: string;
  path: string;
  depth: number;
  selected: string | null;
  onSelect: (f: FileInfo) => void;
  files: Map<string, FileInfo>;
}) {
  const [items, setItems] = useState<FileInfo[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [open, setOpen] = useState<Set<string>>(() => {
    // Open the folders on the way to the selected file.
    const s = new Set<string>();
    const parts = props.selected?.split("/") ?? [];
    for (let i = 1; i < parts.length; i++) s.add(parts.slice(0, i).join("/"));
    return s;
  });
  useEffect(() => {
    listArtifacts(props.runId, props.path).then((f) => {
      for (const x of f) props.files.set(x.path, x);
      setItems([...f].sort((a, b) => Number(b.is_dir) - Number(a.is_dir) || a.path.localeCompare(b.path)));
    }, setError);
  }, [props.runId, props.path]);
  if (error) return <ErrorBox error={error} />;
  if (!items) return <div class="muted" style={{ paddingLeft: props.depth * 14 + 6 }}>…</div>;
  if (!items.length && props.depth === 0) return <p class="muted">This run has no artifacts.</p>;
  return (
    <>
      {items.map((f) => {
        const name = f.path.split("/").pop();
        const isOpen = open.has(f.path);
        return (
          <div key={f.path}>
            <div
              class={`node${props.selected === f.path ? " active" : ""}`}
              style={{ paddingLeft: props.depth * 14 + 6 }}
              data-path={f.path}
              onClick={() => {
                if (f.is_dir) {
                  const n = new Set(open);
                  if (isOpen) n.delete(f.path);
                  else n.add(f.path);
                  setOpen(n);
                } else props.onSelect(f);
              }}
            >
              <span class="muted" style="width:12px">{f.is_dir ? (isOpen ? "▾" : "▸") : ""}</span>
              <FileIcon dir={f.is_dir} />
              <span>{name}</span>
              {!f.is_dir && <span class="hint">{formatBytes(f.file_size)}</span>}
            </div>
            {f.is_dir && isOpen && <Dir {...props} path={f.path} depth={props.depth + 1} />}
          </div>
        );
      })}
    </>
  );
}

export function ArtifactBrowser({
  runId,
  selected,
  onSelect,
}: {
  runId: string;
  selected: string | null;
  onSelect: (path: string) => void;
}) {
  const [files] = useState(() => new Map<string, FileInfo>());
  const [, setTick] = useState(0);
  const file = selected ? (files.get(selected) ?? { path: selected, is_dir: false }) : null;
  return (
    <div class="split" id="artifact-browser">
      <div class="tree">
        <Dir
          runId={runId}
          path=""
          depth={0}
          selected={selected}
          files={files}
          onSelect={(f) => {
            setTick((t) => t + 1);
            onSelect(f.path);
          }}
        />
      </div>
      {file ? <Preview runId={runId} file={file} /> : <div class="preview muted">Select a file to preview it.</div>}
    </div>
  );
}
