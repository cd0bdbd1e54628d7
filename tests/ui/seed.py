"""Data for the UI tests, logged with mltrail's Python client into a directory store."""

from __future__ import annotations

import math
import struct
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import mltrail
from mltrail.client.client import TrackingClient
from mltrail.entities import Dataset, Metric, Param

#: The long ``loss`` series has one spike; server-side downsampling must keep it.
SPIKE_STEP = 3333
SPIKE_VALUE = 50.0
LONG_STEPS = 6000
MANY_RUNS = 260
NOTE = "# Baseline\n\nThis run is **the reference**.\n\n<script>window.__xss = 1</script>\n\n[bad](javascript:alert(1))"
CSV = "epoch,loss,accuracy\n1,0.9,0.51\n2,0.5,0.74\n3,0.31,0.88\n"
HTML = "<html><body><h1 id='report'>Report</h1><script>document.body.dataset.ran = '1'</script></body></html>"


@dataclass
class Seed:
    root: str
    demo_experiment: str = ""
    many_experiment: str = ""
    runs: dict[str, str] = field(default_factory=dict)


def png_bytes(width: int = 48, height: int = 32) -> bytes:
    """A small RGB gradient PNG, written by hand (no imaging library needed)."""
    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 5 % 256, y * 8 % 256, 160)) for x in range(width)) for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _curve(client: TrackingClient, run_id: str, key: str, values: list[float], start: int) -> None:
    client.log_batch(run_id, metrics=[Metric(key, v, start + i * 1000, i) for i, v in enumerate(values)])


def _artifacts(run_dir: Path) -> None:
    (run_dir / "plots").mkdir(parents=True)
    (run_dir / "plots" / "curve.png").write_bytes(png_bytes())
    (run_dir / "notes.txt").write_text("plain text artifact\nsecond line\n")
    (run_dir / "config.json").write_text('{"lr": 0.01, "layers": [64, 32], "name": "baseline"}')
    (run_dir / "params.yaml").write_text("lr: 0.01\noptimizer: adam\n")
    (run_dir / "metrics.csv").write_text(CSV)
    (run_dir / "report.html").write_text(HTML)


def seed(root: str) -> Seed:
    """Two experiments: ``ui-demo`` (a small lr × seed sweep, a baseline with artifacts and a description, a
    parent with two children, a run with a long spiky curve, a running run) and ``ui-many`` (MANY_RUNS runs)."""
    out = Seed(root)
    mltrail.set_tracking_uri(root)
    client = TrackingClient(root)
    now = int(time.time() * 1000) - 3_600_000
    out.demo_experiment = mltrail.create_experiment("ui-demo")
    mltrail.create_experiment("ui-empty")
    for lr in ("0.1", "0.01", "0.001"):
        for seed_ in (1, 2):
            name = f"sweep-lr{lr}-s{seed_}"
            run = client.create_run(out.demo_experiment, run_name=name, tags={"team": "vision"})
            params = [Param("lr", lr), Param("seed", str(seed_)), Param("optimizer", "adam")]
            client.log_batch(run.info.run_id, params=params)
            decay = float(lr) * 10
            _curve(client, run.info.run_id, "loss", [math.exp(-decay * i / 20) + 0.01 * seed_ for i in range(100)], now)
            _curve(client, run.info.run_id, "accuracy", [1 - math.exp(-decay * i / 30) for i in range(100)], now)
            client.set_terminated(run.info.run_id, "FINISHED")
            out.runs[name] = run.info.run_id

    with mltrail.start_run(experiment_id=out.demo_experiment, run_name="baseline", description=NOTE) as run:
        mltrail.log_params({"lr": "0.01", "seed": "0", "optimizer": "sgd"})
        mltrail.log_metric("loss", 0.42, step=0)
        mltrail.set_tag("mlflow.source.git.commit", "0123456789abcdef0123456789abcdef01234567")
        dataset = Dataset("imagenet-mini", "d1g3st", "local", '{"uri": "/data/imagenet-mini"}')
        mltrail.log_input(dataset, context="training")
        with tempfile.TemporaryDirectory() as tmp:
            _artifacts(Path(tmp))
            mltrail.log_artifacts(tmp)
        out.runs["baseline"] = run.info.run_id

    with mltrail.start_run(experiment_id=out.demo_experiment, run_name="parent") as parent:
        out.runs["parent"] = parent.info.run_id
        for i in range(2):
            with mltrail.start_run(experiment_id=out.demo_experiment, run_name=f"child-{i}", nested=True) as child:
                mltrail.log_param("fold", str(i))
                mltrail.log_metric("loss", 0.3 + i / 10)
                out.runs[f"child-{i}"] = child.info.run_id

    long_run = client.create_run(out.demo_experiment, run_name="long-spiky")
    values = [1.0 / (1 + i / 100) for i in range(LONG_STEPS)]
    values[SPIKE_STEP] = SPIKE_VALUE
    _curve(client, long_run.info.run_id, "loss", values, now)
    client.set_terminated(long_run.info.run_id, "FINISHED")
    out.runs["long-spiky"] = long_run.info.run_id

    live = client.create_run(out.demo_experiment, run_name="live-run")
    client.log_metric(live.info.run_id, "loss", 1.0, now, 0, synchronous=True)
    out.runs["live-run"] = live.info.run_id

    out.many_experiment = mltrail.create_experiment("ui-many")
    for i in range(MANY_RUNS):
        run = client.create_run(out.many_experiment, run_name=f"many-{i:04d}", start_time=now + i)
        client.log_batch(run.info.run_id, metrics=[Metric("score", float(i), now, 0)])
        client.set_terminated(run.info.run_id, "FINISHED")
    client.flush()
    mltrail.flush()
    return out
