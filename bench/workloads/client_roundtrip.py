"""A typical client session against a tracking server, with either library's client; checks what came back.

Fluent: set_experiment, start_run, 10 log_param, 100 log_metric, set_tag, log_text (proxied artifact), end_run;
client: log_batch of 1,000 metrics, get_run, search_runs with a filter, get_metric_history, list_artifacts.
Reports the wall time of the whole session and whether every read matched what was written.
"""

from __future__ import annotations

import time

import _common as c


def _session(lib, client) -> list[str]:
    metric_cls, _, _ = c.entity_classes(lib.__name__)
    lib.set_experiment(f"roundtrip-{time.time_ns()}")
    with lib.start_run() as run:
        run_id = run.info.run_id
        for k in range(10):
            lib.log_param(f"p{k}", f"v{k}")
        for step in range(100):
            lib.log_metric("loss", 1 / (step + 1), step=step)
        lib.set_tag("team", "bench")
        lib.log_text("hello", "notes/hello.txt")
    client.log_batch(run_id, metrics=[metric_cls("batch", i / 1000, c.BASE_TIMESTAMP + i, i) for i in range(1000)])

    problems = []
    data = client.get_run(run_id).data
    if len(data.params) != 10 or data.tags.get("team") != "bench" or "loss" not in data.metrics:
        problems.append(f"get_run: {len(data.params)} params, tag team={data.tags.get('team')}, {sorted(data.metrics)}")
    found = client.search_runs([run.info.experiment_id], filter_string="params.p1 = 'v1' and metrics.loss < 0.5")
    if [r.info.run_id for r in found] != [run_id]:
        problems.append(f"search_runs returned {len(found)} runs")
    for key, count in (("loss", 100), ("batch", 1000)):
        got = len(client.get_metric_history(run_id, key))
        if got != count:
            problems.append(f"history {key}: {got}/{count}")
    artifacts = [a.path for a in client.list_artifacts(run_id, "notes")]
    if artifacts != ["notes/hello.txt"]:
        problems.append(f"artifacts: {artifacts}")
    return problems


def main() -> None:
    args = c.parse_args(lambda parser: parser.add_argument("--url", required=True))
    lib = c.load(args.impl)
    lib.set_tracking_uri(args.url)
    client = c.client(args.impl, args.url)
    started = time.perf_counter()
    problems = _session(lib, client)
    c.emit(
        seconds=time.perf_counter() - started,
        verified=not problems,
        detail="all reads matched" if not problems else "; ".join(problems),
    )


if __name__ == "__main__":
    main()
