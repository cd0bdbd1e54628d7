#!/usr/bin/env bash
# Install mltrail, log a demo training run to ./mlruns and to SQLite, and list what was logged.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -e ".[images]"
python3 examples/train_demo.py
MLTRAIL_TRACKING_URI=sqlite:///mltrail.db python3 examples/train_demo.py
mltrail runs list --experiment-name demo
mltrail runs list --experiment-name demo --tracking-uri sqlite:///mltrail.db
