"""Load a tracking server with the official MLflow client (run from the MLflow venv, whatever the server).

Setup (untimed): experiment ``load`` with a target run (20 params, 20 metrics, 5 tags, a 1,000-point metric
``h``) and experiment ``search`` with 100 runs. Then, for each operation and each concurrency, ``--processes``
processes run concurrency/processes threads each; every thread calls the operation in a loop for
``--duration`` seconds (log-metric and log-batch into a run of its own). Reports throughput (calls/s), median
and p99 latency per operation and concurrency, the number of failed calls, the client processes' CPU time per
call and, with ``--server-pid``, the server's: its process tree's CPU time over the timed window divided by the
calls completed in it.

Two layers of the official client make the calls:
- ``rest`` (the load of the targeted rows): MLflow's REST layer, ``mlflow.utils.rest_utils.http_request``
  (its pooled session, headers and retry settings) with the fields ``MlflowClient`` sends; a write must answer
  200 with JSON, a read must hold the runs, params or points set up. The client then costs about the same per
  call as our server, so the calls/s measure the servers.
- ``entities`` (``--entities-operations``, at the highest concurrency): ``MlflowClient`` itself, which also
  turns every response into protobuf messages and entities. For a 100-run search page that costs the client
  ~35-60 ms of CPU, several times our server's, so on shared cores these rows mostly measure the client.
"""

from __future__ import annotations

import itertools
import multiprocessing
import statistics
import threading
import time
from collections.abc import Iterator

import _common as c

OPERATIONS = ("log_metric", "log_batch", "get_run", "search_runs", "get_history")
API = "/api/2.0/mlflow"
#: What a read response must hold: (field, how many items) as set up by :func:`_setup`.
EXPECTED = {"get_run": ("params", 20), "search_runs": ("runs", 100), "get_history": ("metrics", 1000)}


def _arguments(parser) -> None:
    parser.add_argument("--url", required=True)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--server-pid", type=int, help="also report the server's CPU time per call")
    parser.add_argument("--operations", nargs="+", choices=OPERATIONS, default=list(OPERATIONS))
    parser.add_argument(
        "--entities-operations",
        nargs="*",
        choices=OPERATIONS,
        default=[],
        help="also measure these through MlflowClient at the highest concurrency (figures named *_entities_*)",
    )


def _setup(client) -> dict:
    from mlflow.entities import Metric, Param, RunTag

    load = client.create_experiment("load")
    target = client.create_run(load).info.run_id
    client.log_batch(
        target,
        metrics=[Metric(f"m{k}", k * 0.1, c.BASE_TIMESTAMP, 0) for k in range(20)],
        params=[Param(f"p{k}", f"v{k}") for k in range(20)],
        tags=[RunTag(f"t{k}", f"tag{k}") for k in range(5)],
    )
    client.log_batch(target, metrics=[Metric("h", s / 1000, c.BASE_TIMESTAMP + s, s) for s in range(1000)])
    search = client.create_experiment("search")
    for i in range(100):
        run_id = client.create_run(search).info.run_id
        client.log_batch(
            run_id,
            metrics=[Metric(f"m{k}", (i + k) / 100, c.BASE_TIMESTAMP, 0) for k in range(10)],
            params=[Param(f"p{k}", f"v{i % 7}") for k in range(10)],
        )
    return {"load": load, "target": target, "search": search}


def _thread_run(client, ids: dict) -> tuple[str, Iterator[int]]:
    """A run for the writes of the calling thread, and the numbers of its successive calls."""
    return client.create_run(ids["load"]).info.run_id, itertools.count()


def _batch_points(call: int) -> list[tuple[str, int]]:
    """``(key, step)`` of the 1,000 metrics of a thread's ``call``-th log-batch: 10 keys × 100 new steps."""
    return [(f"b{k % 10}", call * 100 + k // 10) for k in range(1000)]


def _entities_operation(client, name: str, ids: dict):
    """A zero-argument callable making one ``MlflowClient`` call of ``name`` (writes go to a run of the calling
    thread)."""
    from mlflow.entities import Metric

    if name in ("log_metric", "log_batch"):
        run_id, calls = _thread_run(client, ids)
        if name == "log_metric":
            return lambda: client.log_metric(run_id, "x", 0.5, step=next(calls))

        def log_batch() -> None:
            metrics = [Metric(key, 0.5, c.BASE_TIMESTAMP, step) for key, step in _batch_points(next(calls))]
            client.log_batch(run_id, metrics=metrics)

        return log_batch
    if name == "get_run":
        return lambda: client.get_run(ids["target"])
    if name == "search_runs":
        return lambda: client.search_runs([ids["search"]], max_results=100)
    return lambda: client.get_metric_history(ids["target"], "h")


def _rest_operation(client, name: str, ids: dict):
    """A zero-argument callable sending ``MlflowClient``'s request for one call of ``name`` through MLflow's
    REST layer and checking the response."""
    import json

    from mlflow.utils.rest_utils import MlflowHostCreds, http_request

    creds = MlflowHostCreds(client.tracking_uri)

    def send(method: str, path: str, **request) -> dict:
        response = http_request(creds, f"{API}/{path}", method, **request)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: HTTP {response.status_code} {response.text[:200]}")
        return json.loads(response.content)

    if name in ("log_metric", "log_batch"):
        run_id, calls = _thread_run(client, ids)
        if name == "log_metric":
            point = {"run_id": run_id, "run_uuid": run_id, "key": "x", "value": 0.5, "timestamp": c.BASE_TIMESTAMP}
            return lambda: send("POST", "runs/log-metric", json=point | {"step": next(calls)})

        def log_batch() -> None:
            metrics = [
                {"key": key, "value": 0.5, "timestamp": c.BASE_TIMESTAMP, "step": step}
                for key, step in _batch_points(next(calls))
            ]
            send("POST", "runs/log-batch", json={"run_id": run_id, "metrics": metrics})

        return log_batch
    if name == "get_run":
        request = ("GET", "runs/get", {"params": {"run_id": ids["target"], "run_uuid": ids["target"]}})
    elif name == "search_runs":
        search = {"experiment_ids": [ids["search"]], "run_view_type": "ACTIVE_ONLY", "max_results": 100}
        request = ("POST", "runs/search", {"json": search})
    else:
        run = {"run_id": ids["target"], "run_uuid": ids["target"]}
        request = ("GET", "metrics/get-history", {"params": run | {"metric_key": "h", "max_results": 25000}})
    field, count = EXPECTED[name]
    method, path, body = request

    def read() -> None:
        answer = send(method, path, **body)
        found = answer.get("run", {}).get("data", answer) if name == "get_run" else answer
        if len(found.get(field, ())) != count:
            raise RuntimeError(f"{path}: {len(found.get(field, ()))} {field}, expected {count}")

    return read


def _operation(client, api: str, name: str, ids: dict):
    return (_rest_operation if api == "rest" else _entities_operation)(client, name, ids)


def _prepare_process() -> None:
    """Pool initializer: pay for importing mlflow once per process, long before any clock starts."""
    import mlflow  # noqa: F401


def _worker(task: tuple) -> tuple[list[float], int, str, float]:
    """One process: ``threads`` threads calling the operation until ``end_at`` (wall clock). Returns the
    latencies, the number of failed calls, the first failure and the process's CPU time over the timed window."""
    from mlflow import MlflowClient

    url, api, name, ids, threads, start_at, end_at = task
    client = MlflowClient(tracking_uri=url)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def loop() -> None:
        call = _operation(client, api, name, ids)
        mine: list[float] = []
        time.sleep(max(0.0, start_at - time.time()))
        while time.time() < end_at:
            began = time.perf_counter()
            try:
                call()
            except Exception as exc:
                with lock:
                    errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                continue
            mine.append(time.perf_counter() - began)
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    time.sleep(max(0.0, start_at - time.time()))
    cpu_at_start = time.process_time()
    for worker in workers:
        worker.join()
    return latencies, len(errors), errors[0] if errors else "", time.process_time() - cpu_at_start


def _measure(pool, args, api: str, name: str, ids: dict, concurrency: int) -> dict:
    start_at = time.time() + 2.0  # time for every thread to create its run before the clock starts
    end_at = start_at + args.duration
    processes = args.processes
    shares = [concurrency // processes + (1 if p < concurrency % processes else 0) for p in range(processes)]
    pending = pool.map_async(_worker, [(args.url, api, name, ids, n, start_at, end_at) for n in shares if n])
    server_cpu = None
    if args.server_pid:  # the server's CPU over the timed window, read beside the load
        time.sleep(max(0.0, start_at - time.time()))
        began = c.tree_cpu_seconds(args.server_pid)
        time.sleep(max(0.0, end_at - time.time()))
        server_cpu = c.tree_cpu_seconds(args.server_pid) - began
    results = pending.get()
    latencies = sorted(lat for result in results for lat in result[0])
    errors = sum(result[1] for result in results)
    prefix = f"{name}_c{concurrency}" + ("_entities" if api == "entities" else "")
    figures = {f"{prefix}_errors": errors, f"{prefix}_throughput": len(latencies) / args.duration}
    if latencies:
        figures[f"{prefix}_p50"] = statistics.median(latencies)
        figures[f"{prefix}_p99"] = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        figures[f"{prefix}_client_cpu"] = sum(result[3] for result in results) / len(latencies)
        if server_cpu is not None:
            figures[f"{prefix}_server_cpu"] = server_cpu / len(latencies)
    first_error = next((result[2] for result in results if result[2]), "")
    return figures | ({f"{prefix}_first_error": first_error} if first_error else {})


def main() -> None:
    args = c.parse_args(_arguments)
    figures: dict = {}
    # The pool forks before the parent opens any connection, so no process inherits a pooled socket.
    with multiprocessing.get_context("fork").Pool(args.processes, _prepare_process) as pool:
        from mlflow import MlflowClient

        ids = _setup(MlflowClient(tracking_uri=args.url))
        for name in args.operations:
            for concurrency in args.concurrency:
                figures |= _measure(pool, args, "rest", name, ids, concurrency)
        for name in args.entities_operations:
            figures |= _measure(pool, args, "entities", name, ids, max(args.concurrency))
    errors = {k: v for k, v in figures.items() if k.endswith("_errors") and v}
    first = next((v for k, v in figures.items() if k.endswith("_first_error")), "")
    c.emit(
        **{k: v for k, v in figures.items() if not k.endswith("_first_error")},
        verified=not errors,
        detail="no failed calls" if not errors else f"failed calls {errors}; first: {first}",
    )


if __name__ == "__main__":
    main()
