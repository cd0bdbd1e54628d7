import { useEffect, useMemo, useState } from "preact/hooks";
import { Dialog, ErrorBox, Loading } from "../components/common";
import {
  countRuns,
  createExperiment,
  deleteExperiment,
  renameExperiment,
  restoreExperiment,
  searchExperiments,
} from "../lib/api";
import { quoteValue } from "../lib/columns";
import { formatTime } from "../lib/format";
import { currentRoute, navigate, useAsync, useDebounced } from "../lib/hooks";
import { runsRoute, type Route } from "../lib/route";
import type { Experiment, ViewType } from "../lib/types";

type Props = { route: Extract<Route, { page: "experiments" }> };
type DialogState = { kind: "create" } | { kind: "rename" | "delete"; exp: Experiment } | null;

/** Run counts, fetched a few at a time so a long list does not flood the server. */
function useRunCounts(experiments: Experiment[] | undefined): Record<string, number | undefined> {
  const [counts, setCounts] = useState<Record<string, number | undefined>>({});
  useEffect(() => {
    if (!experiments) return;
    let cancelled = false;
    const queue = experiments.map((e) => e.experiment_id);
    const worker = async () => {
      for (let id = queue.shift(); id !== undefined && !cancelled; id = queue.shift()) {
        const view: ViewType = "ACTIVE_ONLY";
        const n = await countRuns({ experimentIds: [id], viewType: view }).catch(() => undefined);
        if (!cancelled) setCounts((c) => ({ ...c, [id!]: n }));
      }
    };
    for (let i = 0; i < 4; i++) void worker();
    return () => {
      cancelled = true;
    };
  }, [experiments]);
  return counts;
}

export function ExperimentsPage({ route }: Props) {
  const [query, setQuery] = useState(route.q);
  const q = useDebounced(query, 250);
  useEffect(() => {
    // Read the URL now, not the props: a navigation (e.g. to a created experiment) may have happened since.
    const current = currentRoute();
    if (current.page === "experiments" && current.q !== q) navigate({ ...current, q }, true);
  }, [q]);
  const [pages, setPages] = useState<Experiment[][]>([]);
  const [token, setToken] = useState<string | undefined>();
  const filter = q ? `name ILIKE ${quoteValue(`%${q}%`)}` : undefined;
  const first = useAsync(() => searchExperiments({ filter, viewType: route.view }), [filter, route.view]);
  useEffect(() => {
    setPages(first.data ? [first.data.items] : []);
    setToken(first.data?.nextPageToken);
  }, [first.data]);
  const experiments = useMemo(() => pages.flat(), [pages]);
  const counts = useRunCounts(first.data ? experiments : undefined);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [dialog, setDialog] = useState<DialogState>(null);
  const [actionError, setActionError] = useState<unknown>(null);

  const loadMore = async () => {
    const page = await searchExperiments({ filter, viewType: route.view, pageToken: token });
    setPages((p) => [...p, page.items]);
    setToken(page.nextPageToken);
  };
  const toggle = (id: string) =>
    setSelected((s) => {
      const n = new Set(s);
      if (n.has(id)) n.delete(id);
      else n.add(id);
      return n;
    });
  const restore = async (id: string) => {
    setActionError(null);
    try {
      await restoreExperiment(id);
      first.reload();
    } catch (e) {
      setActionError(e);
    }
  };

  return (
    <div class="page" id="experiments-page">
      <div class="toolbar" style="margin-bottom:10px">
        <h1>Experiments</h1>
        <input
          id="experiment-search"
          type="search"
          placeholder="Search experiments by name"
          value={query}
          onInput={(e) => setQuery(e.currentTarget.value)}
          style="width:280px"
        />
        <select
          value={route.view}
          aria-label="Lifecycle"
          onChange={(e) => navigate({ ...route, view: e.currentTarget.value as ViewType })}
        >
          <option value="ACTIVE_ONLY">Active</option>
          <option value="DELETED_ONLY">Deleted</option>
          <option value="ALL">All</option>
        </select>
        <span class="grow" />
        <button
          id="compare-experiments"
          disabled={selected.size === 0}
          onClick={() => navigate(runsRoute([...selected]))}
          title="Open the runs of every selected experiment in one table"
        >
          Runs of {selected.size || ""} selected
        </button>
        <button id="create-experiment" class="primary" onClick={() => setDialog({ kind: "create" })}>
          New experiment
        </button>
      </div>
      <ErrorBox error={first.error ?? actionError} />
      {first.loading && !first.data ? (
        <Loading />
      ) : (
        <table class="simple" id="experiments-table">
          <thead>
            <tr>
              <th style="width:28px" />
              <th>Name</th>
              <th>ID</th>
              <th style="text-align:right">Runs</th>
              <th>Created</th>
              <th>Last update</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {experiments.map((e) => (
              <tr key={e.experiment_id} data-experiment-id={e.experiment_id}>
                <td>
                  <input
                    type="checkbox"
                    aria-label={`Select ${e.name}`}
                    checked={selected.has(e.experiment_id)}
                    onChange={() => toggle(e.experiment_id)}
                  />
                </td>
                <td>
                  <a class="exp-link" href={`#/runs?e=${encodeURIComponent(e.experiment_id)}`}>
                    {e.name}
                  </a>
                  {e.lifecycle_stage === "deleted" && <span class="badge"> deleted</span>}
                </td>
                <td class="mono muted">{e.experiment_id}</td>
                <td class="num run-count">{counts[e.experiment_id] ?? "…"}</td>
                <td class="muted">{formatTime(e.creation_time)}</td>
                <td class="muted">{formatTime(e.last_update_time)}</td>
                <td style="text-align:right;white-space:nowrap">
                  {e.lifecycle_stage === "deleted" ? (
                    <button onClick={() => restore(e.experiment_id)}>Restore</button>
                  ) : (
                    <>
                      <button onClick={() => setDialog({ kind: "rename", exp: e })}>Rename</button>{" "}
                      <button class="danger" onClick={() => setDialog({ kind: "delete", exp: e })}>
                        Delete
                      </button>
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {first.data && experiments.length === 0 && <p class="muted">No experiments match.</p>}
      {token && (
        <p>
          <button onClick={loadMore}>Load more</button>
        </p>
      )}
      {dialog?.kind === "create" && (
        <Dialog
          title="New experiment"
          label="Name"
          confirm="Create"
          onClose={() => setDialog(null)}
          onSubmit={async (name) => {
            const id = await createExperiment(name.trim());
            navigate(runsRoute([id]));
          }}
        />
      )}
      {dialog?.kind === "rename" && (
        <Dialog
          title="Rename experiment"
          label="New name"
          initial={dialog.exp.name}
          confirm="Rename"
          onClose={() => setDialog(null)}
          onSubmit={async (name) => {
            await renameExperiment(dialog.exp.experiment_id, name.trim());
            first.reload();
          }}
        />
      )}
      {dialog?.kind === "delete" && (
        <Dialog
          title={`Delete experiment "${dialog.exp.name}"?`}
          confirm="Delete"
          danger
          onClose={() => setDialog(null)}
          onSubmit={async () => {
            await deleteExperiment(dialog.exp.experiment_id);
            first.reload();
          }}
        >
          <p class="muted">Its runs are deleted with it. Deleted experiments can be restored from the "Deleted" view.</p>
        </Dialog>
      )}
    </div>
  );
}
