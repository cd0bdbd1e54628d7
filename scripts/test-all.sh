#!/usr/bin/env bash
# Install everything the test suite needs, then run all of it: lint, format check, the UI's unit tests and a
# rebuild of its bundle (which must match the committed one), and every Python test (including the end-to-end UI
# tests in a real headless Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
fi
python3 -m pip install --quiet --disable-pip-version-check -e ".[dev]"
bash scripts/services.sh

ruff check .
ruff format --check .

bash ui/ci-build.sh --test
if [ -n "$(git status --porcelain -- src/mltrail/server/static)" ]; then
    git status --short -- src/mltrail/server/static >&2
    echo "The committed UI bundle is stale: run 'bash ui/ci-build.sh' and commit src/mltrail/server/static." >&2
    exit 1
fi

python3 -m pytest -q -p no:cacheprovider "$@"
