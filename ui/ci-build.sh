#!/usr/bin/env bash
# Install the UI's locked npm dependencies and build the bundle into src/mltrail/server/static/.
# Usage: bash ui/ci-build.sh [--test]   (--test also runs the Vitest unit tests)
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --loglevel=error
if [[ "${1:-}" == "--test" ]]; then
  npx vitest run
fi
npm run build --silent
