#!/usr/bin/env bash
# The main job: install everything, then run critest, printing a per-area summary and writing
# JUnit to reports/. Until the bundled reference runtime serves pods and containers, critest runs
# against the offline containerd test bed (a local registry plus a private containerd), which is
# started before and cleaned up after. Extra arguments go to critest (e.g. --focus Image).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"
exec critest-testbed run -- sh -c 'exec critest --parallel 2 --test-images-file "$CRITEST_TEST_IMAGES_FILE" \
    --report-dir reports --report-prefix containerd "$@"' critest "$@"
