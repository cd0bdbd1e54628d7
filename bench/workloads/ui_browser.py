"""The web UI in headless Chromium: mltrail's UI against MLflow's, each served by its own server on a SQLite
database that its own library populated.

Two modes (the ``ui`` suite runs both):

``populate`` (run with the library's interpreter): writes the data set into ``--db-uri``:
  experiment ``ui-bench``: ``--runs`` runs, each with 20 params and 20 metrics (one point each);
  experiment ``ui-long``: 10 runs with one metric ``loss`` of ``--points`` points, a slow decay with noise and
  one spike per run (value ``SPIKE_BASE + run index`` at a known step).
  mltrail writes with the SQL store's ``log_batch``, MLflow with ``MlflowClient.log_batch`` (≤1000 metrics each).

``measure`` (run with mltrail's interpreter, which has Playwright; ``--ui`` says whose UI is at ``--url``), each
timed from navigation in a fresh browser page, ``--samples`` times (median reported):
  - first rows: until the runs table of ``ui-bench`` shows its first rows;
  - re-sort: click the ``m1`` metric column header until the rows are re-rendered in the new order (the first
    row becomes the run with the largest ``m1``);
  - chart: the ``loss`` chart of the 10 ``ui-long`` runs until its canvas is drawn; the series the UI received
    are checked: each one's maximum must be its run's spike.
Screenshots go to ``--screenshots`` (``bench-<ui>-<page>.png``).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common as c

RUN_EXPERIMENT = "ui-bench"
LONG_EXPERIMENT = "ui-long"
LONG_RUNS = 10
SPIKE_BASE = 1000.0
PARAMS = 20
METRICS = 20
CHROMIUM = "/usr/bin/chromium"
#: The e2e tests' Chromium flags (headless, in containers).
CHROMIUM_ARGS = (Path(__file__).resolve().parents[2] / "ui" / "headless-chromium.args").read_text().split()
TIMEOUT_MS = 180_000


def _arguments(parser) -> None:
    parser.add_argument("mode", choices=("populate", "measure"))
    parser.add_argument("--db-uri", help="populate: the database to fill")
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--url", help="measure: the server")
    parser.add_argument("--ui", choices=c.IMPLS, help="measure: whose UI the server serves")
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--screenshots", help="measure: folder for screenshots")


# --- populate ---------------------------------------------------------------------------------------------------


def spike_step(run_index: int, points: int) -> int:
    return (7919 * (run_index + 1) + points // 3) % points


def long_value(run_index: int, step: int, points: int) -> float:
    if step == spike_step(run_index, points):
        return SPIKE_BASE + run_index
    return math.exp(-3 * step / points) + ((step * 2654435761 + run_index) % 1000) / 20000


def _populate(args) -> dict:
    if args.impl == "mltrail":
        from mltrail.store.sql import SqlStore

        writer: Any = SqlStore(args.db_uri)
    else:
        writer = c.client("mlflow", args.db_uri)
    metric_cls, param_cls, _ = c.entity_classes(args.impl)
    started = time.perf_counter()
    experiment_id = writer.create_experiment(RUN_EXPERIMENT)
    for i in range(args.runs):
        run_id = writer.create_run(experiment_id, start_time=c.BASE_TIMESTAMP + i).info.run_id
        params = [param_cls(f"p{k}", c.param_value(i, k)) for k in range(PARAMS)]
        metrics = [metric_cls(f"m{k}", c.metric_value(i, k, 0), c.BASE_TIMESTAMP + i, 0) for k in range(METRICS)]
        writer.log_batch(run_id, metrics=metrics, params=params)
    runs_seconds = time.perf_counter() - started
    started = time.perf_counter()
    long_id = writer.create_experiment(LONG_EXPERIMENT)
    for r in range(LONG_RUNS):
        run_id = writer.create_run(long_id, start_time=c.BASE_TIMESTAMP + r, run_name=f"long-{r}").info.run_id
        for first in range(0, args.points, 1000):
            steps = range(first, min(first + 1000, args.points))
            batch = [metric_cls("loss", long_value(r, s, args.points), c.BASE_TIMESTAMP + s, s) for s in steps]
            writer.log_batch(run_id, metrics=batch)
    return {"runs": args.runs, "runs_seconds": runs_seconds, "points_seconds": time.perf_counter() - started}


# --- measure ----------------------------------------------------------------------------------------------------


class Ui:
    """One UI's pages and what "done" looks like on each. ``best_run`` is the run the re-sorted table must show
    first (the largest ``m1``, MLflow's tie-breakers), as its run id and name."""

    def __init__(self, url: str, page: Any, experiments: dict[str, str], long_runs: list[str], best: dict) -> None:
        self.url, self.page, self.experiments, self.long_runs, self.best = url, page, experiments, long_runs, best

    def first_rows(self) -> None:
        raise NotImplementedError

    def resort(self) -> None:
        raise NotImplementedError

    def chart(self) -> tuple[dict[str, float], int]:
        """Draw the ``loss`` chart of the long runs; return the maximum of each series the UI received and how
        many points it received in all."""
        raise NotImplementedError

    def _collect(self, url_part: str, series_of: Callable[[dict], list[tuple[str, list[float]]]]) -> dict:
        received: dict[str, Any] = {"maxima": {}, "points": 0}

        def on_response(response: Any) -> None:
            if url_part in response.url and response.ok:
                for run_id, values in series_of(response.json()):
                    numbers = [v for v in values if isinstance(v, int | float)]
                    if numbers:
                        received["maxima"][run_id] = max(received["maxima"].get(run_id, -math.inf), max(numbers))
                    received["points"] += len(values)

        self.page.on("response", on_response)
        return received


class MltrailUi(Ui):
    """mltrail's UI: the virtualised runs table (``#runs-grid``) and the Charts tab (uPlot canvas)."""

    def first_rows(self) -> None:
        self.page.goto(f"{self.url}/#/runs?e={self.experiments[RUN_EXPERIMENT]}")
        self.page.locator("#runs-grid .vrow[data-run-id]").first.wait_for(timeout=TIMEOUT_MS)

    def resort(self) -> None:
        self.page.locator("#runs-grid .vhead .vcell", has_text="m1").first.click()  # metrics sort descending first
        self.page.wait_for_function(
            "id => document.querySelector('#runs-grid .vrow[data-run-id]')?.dataset.runId === id",
            arg=self.best["run_id"],
            timeout=TIMEOUT_MS,
        )

    def chart(self) -> tuple[dict[str, float], int]:
        received = self._collect(
            "mltrail/metrics/bucketed", lambda body: [(s["run_id"], s["y"]) for s in body["series"]]
        )
        runs = ",".join(self.long_runs)
        self.page.goto(f"{self.url}/#/runs?e={self.experiments[LONG_EXPERIMENT]}&tab=charts&sel={runs}&k=loss")
        card = self.page.locator('.chart-card[data-metric="loss"]')
        card.locator("h3 .hint", has_text="sampled").wait_for(timeout=TIMEOUT_MS)
        card.locator("canvas").first.wait_for(timeout=TIMEOUT_MS)
        return received["maxima"], received["points"]


class MlflowUi(Ui):
    """MLflow 3.x: the experiment page's runs table (AG Grid) and its chart view (Plotly), which fetches
    ``metrics/get-history-bulk-interval`` (at most 320 sampled points per run)."""

    def first_rows(self) -> None:
        self.page.goto(f"{self.url}/#/experiments/{self.experiments[RUN_EXPERIMENT]}/runs")
        self.page.locator(".ag-row a[href*='/runs/']").first.wait_for(timeout=TIMEOUT_MS)

    def resort(self) -> None:
        self.page.locator("button", has_text="Sort:").first.click()
        self.page.locator('[data-testid="sort-select-m1"]').click()  # the default direction is descending
        self.page.wait_for_function(
            'name => document.querySelector(\'.ag-row[row-index="0"] a[href*="/runs/"]\')?.textContent === name',
            arg=self.best["run_name"],
            timeout=TIMEOUT_MS,
        )

    def chart(self) -> tuple[dict[str, float], int]:
        received = self._collect(
            "metrics/get-history-bulk-interval",
            lambda body: [(m["run_id"], [m["value"]]) for m in body.get("metrics", [])],
        )
        self.page.goto(f"{self.url}/#/experiments/{self.experiments[LONG_EXPERIMENT]}/runs?compareRunsMode=CHART")
        traces = self.page.locator(".js-plotly-plot .scatterlayer .trace")
        traces.nth(len(self.long_runs) - 1).wait_for(timeout=TIMEOUT_MS)
        return received["maxima"], received["points"]


def _post(url: str, path: str, body: dict) -> dict:
    import requests

    response = requests.post(f"{url}/api/2.0/mlflow/{path}", json=body, timeout=60)
    response.raise_for_status()
    return response.json()


def _facts(url: str) -> tuple[dict[str, str], list[str], dict, dict[str, float]]:
    """Experiment ids, the long runs, the run that sorts first by ``m1`` and each long run's spike, from the REST
    API (untimed)."""
    experiments = {}
    for name in (RUN_EXPERIMENT, LONG_EXPERIMENT):
        found = _post(url, "experiments/search", {"filter": f"name = '{name}'", "max_results": 1})
        experiments[name] = found["experiments"][0]["experiment_id"]
    long_runs = _post(url, "runs/search", {"experiment_ids": [experiments[LONG_EXPERIMENT]], "max_results": 100})
    spikes = {r["info"]["run_id"]: SPIKE_BASE + int(r["info"]["run_name"].split("-")[1]) for r in long_runs["runs"]}
    body = {"experiment_ids": [experiments[RUN_EXPERIMENT]], "order_by": ["metrics.m1 DESC"], "max_results": 1}
    best = _post(url, "runs/search", body)["runs"][0]["info"]
    return experiments, list(spikes), {"run_id": best["run_id"], "run_name": best["run_name"]}, spikes


def _timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def _measure(args) -> dict:
    from playwright.sync_api import Error, sync_playwright

    experiments, long_runs, best, spikes = _facts(args.url)
    ui_class = MltrailUi if args.ui == "mltrail" else MlflowUi
    times: dict[str, list[float]] = {"first_rows_seconds": [], "resort_seconds": [], "chart_seconds": []}
    notes, verified = [], True
    shots = Path(args.screenshots) if args.screenshots else None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for sample in range(args.samples):
            for name, step in (("first_rows", "first_rows"), ("resort", "resort"), ("chart", "chart")):
                context = browser.new_context(viewport={"width": 1400, "height": 900}, color_scheme="light")
                page = context.new_page()
                ui = ui_class(args.url, page, experiments, long_runs, best)
                try:
                    if name == "resort":
                        ui.first_rows()
                    seconds, result = _timed(getattr(ui, step))
                    times[f"{name}_seconds"].append(seconds)
                    if name == "chart":
                        maxima, points = result
                        missing = [run for run in long_runs if maxima.get(run) != spikes[run]]
                        if missing:
                            verified = verified and args.ui == "mlflow"  # MLflow's sampling losing spikes is a finding
                            notes.append(f"{len(missing)}/{len(long_runs)} spikes missing from the chart data")
                        notes.append(f"chart data: {points:,} points for {len(long_runs)} runs")
                    if shots and sample == 0:
                        shots.mkdir(parents=True, exist_ok=True)
                        page.screenshot(path=str(shots / f"bench-{args.ui}-{name.replace('_', '-')}.png"))
                except (Error, NotImplementedError) as exc:
                    notes.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
                finally:
                    context.close()
        browser.close()
    figures = {key: statistics.median(values) for key, values in times.items() if values}
    return {**figures, "verified": verified, "detail": "; ".join(dict.fromkeys(notes))}


def main() -> None:
    args = c.parse_args(_arguments)
    c.emit(**(_populate(args) if args.mode == "populate" else _measure(args)))


if __name__ == "__main__":
    main()
