#!/usr/bin/env bash
# Install everything the test suite needs, then run all of it: lint, format check, and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -e ".[dev]"
bash scripts/services.sh

ruff check .
ruff format --check .
python3 -m pytest -q -p no:cacheprovider "$@"
