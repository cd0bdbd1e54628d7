#!/usr/bin/env bash
# The main job: install mltrail, log a demo training run to ./mlruns and to SQLite, show them on the command
# line, then serve the web UI on http://127.0.0.1:5000 for the ./mlruns runs (Ctrl-C stops it).
# DEMO_SERVE=0 skips the server (for scripted use).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -e ".[server,images]"
python3 examples/train_demo.py
MLTRAIL_TRACKING_URI=sqlite:///mltrail.db python3 examples/train_demo.py

experiment_id=$(mltrail experiments search --json | python3 -c \
    'import json, sys; print(next(e["experiment_id"] for e in json.load(sys.stdin) if e["name"] == "train-demo"))')
mltrail runs list --experiment-id "$experiment_id"

if [ "${DEMO_SERVE:-1}" != "0" ]; then
    echo "Serving the UI on http://127.0.0.1:5000 (Ctrl-C to stop)"
    exec mltrail ui --backend-store-uri ./mlruns
fi
