"""One small, hand-designed data set that the search tests query (and the cross-store test builds twice).

Experiment ``main`` holds r1..r5 (active, start_time 1000..5000, so the default order is r5, r4, r3, r2, r1) and r6
(deleted, start_time 6000); experiment ``other`` holds r7. Every value below is chosen so that each operator
separates the runs differently:

======  =====================  =====  ============  ===========  ==========  ============  ========  =================
run     loss history (latest)  acc    params.lr     params.opt   model       tags.team     tags.env  datasets (context)
======  =====================  =====  ============  ===========  ==========  ============  ========  =================
r1      0.9, 0.5 (0.5)         0.8    0.01          adam         ResNet50    vision        prod      train/d1 (training)
r2      0.7, 0.2, 0.3 (0.3)    0.9    0.1           sgd          resnet18    nlp           -         eval/d2 (eval)
r3      NaN                    -      0.01          Adam         -           vision        -         -
r4      -                      -      -             -            vit         -             -         -
r5      1.5                    -      1             -            -           Vision        dev       train/d1, eval/d2
r6 del  0.1                    -      0.01          -            -           vision        -         -
r7 oth  0.4                    -      0.01          -            -           vision        -         -
======  =====================  =====  ============  ===========  ==========  ============  ========  =================
Statuses: r1 FINISHED, r2 RUNNING, r3 FAILED, r4 KILLED, r5 FINISHED.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mltrail.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunStatus, RunTag
from mltrail.store.base import TrackingStore

from .helpers import unique_name

_TRAIN = DatasetInput(Dataset("train", "d1", "local", "/data/train"), (InputTag("mlflow.data.context", "training"),))
_EVAL = DatasetInput(Dataset("eval", "d2", "local", "/data/eval"), (InputTag("mlflow.data.context", "eval"),))

_RUNS: dict[str, dict] = {
    "r1": {
        "start": 1000, "status": RunStatus.FINISHED, "loss": [0.9, 0.5], "acc": 0.8,
        "params": {"lr": "0.01", "opt": "adam", "model": "ResNet50"}, "tags": {"team": "vision", "env": "prod"},
        "inputs": [_TRAIN],
    },
    "r2": {
        "start": 2000, "status": RunStatus.RUNNING, "loss": [0.7, 0.2, 0.3], "acc": 0.9,
        "params": {"lr": "0.1", "opt": "sgd", "model": "resnet18"}, "tags": {"team": "nlp"}, "inputs": [_EVAL],
    },
    "r3": {
        "start": 3000, "status": RunStatus.FAILED, "loss": [math.nan],
        "params": {"lr": "0.01", "opt": "Adam"}, "tags": {"team": "vision"},
    },
    "r4": {"start": 4000, "status": RunStatus.KILLED, "params": {"model": "vit"}},
    "r5": {
        "start": 5000, "status": RunStatus.FINISHED, "loss": [1.5],
        "params": {"lr": "1"}, "tags": {"team": "Vision", "env": "dev"}, "inputs": [_TRAIN, _EVAL],
    },
    "r6": {"start": 6000, "loss": [0.1], "params": {"lr": "0.01"}, "tags": {"team": "vision"}, "deleted": True},
    "r7": {"start": 7000, "loss": [0.4], "params": {"lr": "0.01"}, "tags": {"team": "vision"}, "other": True},
}  # fmt: skip


@dataclass(frozen=True)
class SearchData:
    main: str
    other: str
    #: run name → run id
    ids: dict[str, str]


def build_search_data(store: TrackingStore) -> SearchData:
    main = store.create_experiment(unique_name("search-main"))
    other = store.create_experiment(unique_name("search-other"))
    ids = {}
    for name, spec in _RUNS.items():
        run_id = store.create_run(
            other if spec.get("other") else main, user_id="tester", start_time=spec["start"], run_name=name
        ).info.run_id
        metrics = [Metric("loss", value, 100 + step, step) for step, value in enumerate(spec.get("loss", []))]
        if "acc" in spec:
            metrics.append(Metric("acc", spec["acc"], 100, 0))
        store.log_batch(
            run_id,
            metrics=metrics,
            params=[Param(k, v) for k, v in spec.get("params", {}).items()],
            tags=[RunTag(k, v) for k, v in spec.get("tags", {}).items()],
        )
        if "inputs" in spec:
            store.log_inputs(run_id, spec["inputs"])
        if "status" in spec:
            store.update_run_info(run_id, run_status=spec["status"], end_time=spec["start"] + 500)
        if spec.get("deleted"):
            store.delete_run(run_id)
        ids[name] = run_id
    return SearchData(main, other, ids)
