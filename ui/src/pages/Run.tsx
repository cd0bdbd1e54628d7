import { useEffect, useMemo, useState } from "preact/hooks";
import { ArtifactBrowser } from "../components/ArtifactBrowser";
import { Dialog, ErrorBox, Loading, Status } from "../components/common";
import { Markdown } from "../components/Markdown";
import { Sparkline } from "../components/Sparkline";
import {
  bucketedMetrics,
  deleteRun,
  deleteRunTag,
  getExperiment,
  getRun,
  metricSummaries,
  renameRun,
  restoreRun,
  searchRuns,
  setRunTag,
} from "../lib/api";
import { quoteKey, quoteValue, tagValue, toNumber } from "../lib/columns";
import { formatDuration, formatNumber, formatTime, runDuration } from "../lib/format";
import { navigate, useAsync } from "../lib/hooks";
import { startPolling } from "../lib/poll";
import { compareRoute, DEFAULT_CHART, type Route } from "../lib/route";
import type { BucketedSeries, MetricSummary, Run } from "../lib/types";

type RunRoute = Extract<Route, { page: "run" }>;
const NOTE_TAG = "mlflow.note.content";
const SPARK_BUCKETS = 60;

function useLiveRun(runId: string) {
  const [run, setRun] = useState<Run | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [nonce, setNonce] = useState(0);
  useEffect(() => {
    let current: Run | null = null;
    getRun(runId).then((r) => {
      current = r;
      setRun(r);
      setError(null);
    }, setError);
    return startPolling(async () => {
      if (current && current.info.status !== "RUNNING") return null;
      const r = await getRun(runId);
      const changed = JSON.stringify(r) !== JSON.stringify(current);
      current = r;
      if (changed) setRun(r);
      return changed;
    });
  }, [runId, nonce]);
  return { run, error, reload: () => setNonce((n) => n + 1) };
}

function Section({ title, id, children, actions }: { title: string; id: string; children: unknown; actions?: unknown }) {
  return (
    <section class="card" id={id}>
      <div class="toolbar" style="margin-bottom:8px">
        <h2 style="margin:0">{title}</h2>
        <span class="grow" />
        {actions as never}
      </div>
      {children as never}
    </section>
  );
}

function Overview({ run }: { run: Run }) {
  const info = run.info;
  const experiment = useAsync(() => getExperiment(info.experiment_id), [info.experiment_id]);
  const parent = tagValue(run, "mlflow.parentRunId");
  const children = useAsync(
    () =>
      searchRuns(
        { experimentIds: [info.experiment_id], filter: `tags.${quoteKey("mlflow.parentRunId")} = ${quoteValue(info.run_id)}` },
        undefined,
        100,
      ),
    [info.run_id],
  );
  const commit = tagValue(run, "mlflow.source.git.commit");
  return (
    <div class="kv" id="run-overview">
      <span>Run ID</span>
      <span class="mono">{info.run_id}</span>
      <span>Experiment</span>
      <a href={`#/runs?e=${info.experiment_id}`}>{experiment.data?.name ?? info.experiment_id}</a>
      <span>Status</span>
      <span>
        <Status status={info.status} />
        {info.lifecycle_stage === "deleted" && <span class="badge">deleted</span>}
      </span>
      <span>Started</span>
      <span>{formatTime(info.start_time)}</span>
      <span>Ended</span>
      <span>{formatTime(info.end_time) || "—"}</span>
      <span>Duration</span>
      <span>{formatDuration(runDuration(info.start_time, info.end_time, info.status))}</span>
      <span>User</span>
      <span>{info.user_id || "—"}</span>
      <span>Source</span>
      <span class="mono">
        {tagValue(run, "mlflow.source.name") ?? "—"} {tagValue(run, "mlflow.source.type") && <span class="badge">{tagValue(run, "mlflow.source.type")}</span>}
      </span>
      {commit && (
        <>
          <span>Git commit</span>
          <span class="mono">{commit}</span>
        </>
      )}
      {parent && (
        <>
          <span>Parent run</span>
          <a class="mono" href={`#/run/${parent}`}>
            {parent}
          </a>
        </>
      )}
      {children.data && children.data.items.length > 0 && (
        <>
          <span>Child runs</span>
          <span>
            {children.data.items.map((c, i) => (
              <>
                {i > 0 && ", "}
                <a href={`#/run/${c.info.run_id}`}>{c.info.run_name}</a>
              </>
            ))}
            {children.data.nextPageToken && " …"}
          </span>
        </>
      )}
      <span>Artifacts</span>
      <span class="mono">{info.artifact_uri}</span>
    </div>
  );
}

function Description({ run, onSaved }: { run: Run; onSaved: () => void }) {
  const text = tagValue(run, NOTE_TAG) ?? "";
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(text);
  const [error, setError] = useState<unknown>(null);
  const save = async () => {
    try {
      await setRunTag(run.info.run_id, NOTE_TAG, draft);
      setEditing(false);
      onSaved();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <Section
      title="Description"
      id="run-description"
      actions={
        !editing && (
          <button
            onClick={() => {
              setDraft(text);
              setEditing(true);
            }}
          >
            Edit
          </button>
        )
      }
    >
      <ErrorBox error={error} />
      {editing ? (
        <div style="display:flex;flex-direction:column;gap:6px">
          <textarea rows={8} value={draft} onInput={(e) => setDraft(e.currentTarget.value)} class="mono" />
          <div class="toolbar">
            <button class="primary" onClick={save}>
              Save
            </button>
            <button onClick={() => setEditing(false)}>Cancel</button>
            <span class="hint">Markdown; raw HTML is shown as text.</span>
          </div>
        </div>
      ) : text ? (
        <Markdown source={text} />
      ) : (
        <p class="muted">No description.</p>
      )}
    </Section>
  );
}

function Params({ run }: { run: Run }) {
  const [q, setQ] = useState("");
  const params = [...(run.data.params ?? [])].sort((a, b) => a.key.localeCompare(b.key)).filter((p) => `${p.key} ${p.value}`.toLowerCase().includes(q.toLowerCase()));
  return (
    <Section
      title={`Parameters (${run.data.params?.length ?? 0})`}
      id="run-params"
      actions={<input type="search" placeholder="Search" value={q} onInput={(e) => setQ(e.currentTarget.value)} />}
    >
      <table class="simple">
        <tbody>
          {params.map((p) => (
            <tr key={p.key}>
              <td class="mono">{p.key}</td>
              <td class="mono cell-wrap">{p.value}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Section>
  );
}

function Metrics({ run }: { run: Run }) {
  const keys = useMemo(() => (run.data.metrics ?? []).map((m) => m.key).sort(), [run]);
  const latestKey = (run.data.metrics ?? []).map((m) => `${m.key}:${m.step}:${m.value}`).join(",");
  const summaries = useAsync(() => metricSummaries([run.info.run_id], keys), [run.info.run_id, latestKey]);
  const sparks = useAsync(
    () => bucketedMetrics({ runIds: [run.info.run_id], keys, xAxis: "step", buckets: SPARK_BUCKETS }),
    [run.info.run_id, latestKey],
  );
  const byKey = new Map<string, MetricSummary>((summaries.data ?? []).map((s) => [s.key, s]));
  const sparkByKey = new Map<string, BucketedSeries>((sparks.data ?? []).map((s) => [s.metric_key, s]));
  const [q, setQ] = useState("");
  const shown = keys.filter((k) => k.toLowerCase().includes(q.toLowerCase()));
  const chart = (k: string | null) => navigate({ ...compareRoute([run.info.run_id]), chart: { ...DEFAULT_CHART, keys: k ? [k] : null } });
  return (
    <Section
      title={`Metrics (${keys.length})`}
      id="run-metrics"
      actions={
        <>
          <input type="search" placeholder="Search" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
          <button onClick={() => chart(null)}>Chart all</button>
        </>
      }
    >
      <ErrorBox error={summaries.error ?? sparks.error} />
      <table class="simple">
        <thead>
          <tr>
            <th>Key</th>
            <th style="text-align:right">Latest</th>
            <th style="text-align:right">Step</th>
            <th style="text-align:right">Min</th>
            <th style="text-align:right">Max</th>
            <th>History</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((k) => {
            const latest = run.data.metrics!.find((m) => m.key === k)!;
            const s = byKey.get(k);
            const sp = sparkByKey.get(k);
            return (
              <tr key={k}>
                <td class="mono">
                  <a
                    href="#"
                    onClick={(e) => {
                      e.preventDefault();
                      chart(k);
                    }}
                  >
                    {k}
                  </a>
                </td>
                <td class="num">{formatNumber(toNumber(latest.value))}</td>
                <td class="num">{latest.step}</td>
                <td class="num">{formatNumber(s?.min)}</td>
                <td class="num">{formatNumber(s?.max)}</td>
                <td>{sp && <Sparkline x={sp.x} y={sp.y} />}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </Section>
  );
}

function Tags({ run, onChanged }: { run: Run; onChanged: () => void }) {
  const [showSystem, setShowSystem] = useState(false);
  const [editing, setEditing] = useState<{ key: string; value: string; isNew: boolean } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const tags = (run.data.tags ?? []).filter((t) => showSystem || !t.key.startsWith("mlflow.")).sort((a, b) => a.key.localeCompare(b.key));
  const act = async (fn: () => Promise<unknown>) => {
    setError(null);
    try {
      await fn();
      onChanged();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <Section
      title="Tags"
      id="run-tags"
      actions={
        <>
          <label>
            <input type="checkbox" checked={showSystem} onChange={(e) => setShowSystem(e.currentTarget.checked)} /> system tags
          </label>
          <button id="add-tag" onClick={() => setEditing({ key: "", value: "", isNew: true })}>
            Add tag
          </button>
        </>
      }
    >
      <ErrorBox error={error} />
      <table class="simple">
        <tbody>
          {tags.map((t) => (
            <tr key={t.key}>
              <td class="mono">{t.key}</td>
              <td class="mono cell-wrap">{t.value}</td>
              <td style="text-align:right;white-space:nowrap">
                <button onClick={() => setEditing({ ...t, isNew: false })}>Edit</button>{" "}
                <button class="danger" onClick={() => act(() => deleteRunTag(run.info.run_id, t.key))}>
                  Delete
                </button>
              </td>
            </tr>
          ))}
          {!tags.length && (
            <tr>
              <td class="muted">No tags.</td>
            </tr>
          )}
        </tbody>
      </table>
      {editing && (
        <div class="toolbar" style="margin-top:8px" id="tag-editor">
          <input
            placeholder="key"
            value={editing.key}
            disabled={!editing.isNew}
            onInput={(e) => setEditing({ ...editing, key: e.currentTarget.value })}
          />
          <input
            placeholder="value"
            value={editing.value}
            onInput={(e) => setEditing({ ...editing, value: e.currentTarget.value })}
            style="flex:1"
          />
          <button
            class="primary"
            onClick={() =>
              act(async () => {
                await setRunTag(run.info.run_id, editing.key.trim(), editing.value);
                setEditing(null);
              })
            }
          >
            Save
          </button>
          <button onClick={() => setEditing(null)}>Cancel</button>
        </div>
      )}
    </Section>
  );
}

function Datasets({ run }: { run: Run }) {
  const inputs = run.inputs?.dataset_inputs ?? [];
  if (!inputs.length) return null;
  return (
    <Section title={`Dataset inputs (${inputs.length})`} id="run-datasets">
      <table class="simple">
        <thead>
          <tr>
            <th>Name</th>
            <th>Digest</th>
            <th>Context</th>
            <th>Source</th>
            <th>Schema / profile</th>
          </tr>
        </thead>
        <tbody>
          {inputs.map((d, i) => (
            <tr key={i}>
              <td>{d.dataset.name}</td>
              <td class="mono">{d.dataset.digest}</td>
              <td>{d.tags?.find((t) => t.key === "mlflow.data.context")?.value ?? ""}</td>
              <td class="mono cell-wrap">
                <span class="badge">{d.dataset.source_type}</span> {d.dataset.source}
              </td>
              <td>
                {(d.dataset.schema || d.dataset.profile) && (
                  <details>
                    <summary>show</summary>
                    {d.dataset.schema && <pre>{d.dataset.schema}</pre>}
                    {d.dataset.profile && <pre>{d.dataset.profile}</pre>}
                  </details>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Section>
  );
}

export function RunPage({ route }: { route: RunRoute }) {
  const { run, error, reload } = useLiveRun(route.runId);
  const [dialog, setDialog] = useState<"rename" | "delete" | null>(null);
  if (error) return <div class="page"><ErrorBox error={error} /></div>;
  if (!run) return <div class="page"><Loading /></div>;
  const deleted = run.info.lifecycle_stage === "deleted";
  return (
    <div class="page" id="run-page" style="display:flex;flex-direction:column;gap:12px">
      <div class="toolbar">
        <a href="#/experiments">Experiments</a>
        <span class="muted">/</span>
        <a href={`#/runs?e=${run.info.experiment_id}`}>runs</a>
        <span class="muted">/</span>
        <h1 id="run-title">{run.info.run_name}</h1>
        <Status status={run.info.status} />
        {run.info.status === "RUNNING" && <span class="hint">live</span>}
        <span class="grow" />
        <button onClick={() => setDialog("rename")}>Rename</button>
        {deleted ? (
          <button onClick={() => restoreRun(run.info.run_id).then(reload)}>Restore</button>
        ) : (
          <button class="danger" onClick={() => setDialog("delete")}>
            Delete
          </button>
        )}
      </div>
      <div class="grid2">
        <Section title="Overview" id="run-overview-card">
          <Overview run={run} />
        </Section>
        <Description run={run} onSaved={reload} />
      </div>
      <div class="grid2">
        <Params run={run} />
        <Metrics run={run} />
      </div>
      <div class="grid2">
        <Tags run={run} onChanged={reload} />
        <Datasets run={run} />
      </div>
      <Section title="Artifacts" id="run-artifacts">
        <ArtifactBrowser
          runId={run.info.run_id}
          selected={route.artifact}
          onSelect={(artifact) => navigate({ ...route, artifact }, true)}
        />
      </Section>
      {dialog === "rename" && (
        <Dialog
          title="Rename run"
          label="New name"
          initial={run.info.run_name}
          confirm="Rename"
          onClose={() => setDialog(null)}
          onSubmit={async (name) => {
            await renameRun(run.info.run_id, name.trim());
            reload();
          }}
        />
      )}
      {dialog === "delete" && (
        <Dialog
          title="Delete this run?"
          confirm="Delete"
          danger
          onClose={() => setDialog(null)}
          onSubmit={async () => {
            await deleteRun(run.info.run_id);
            reload();
          }}
        />
      )}
    </div>
  );
}
