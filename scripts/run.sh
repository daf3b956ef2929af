#!/usr/bin/env bash
# The main job: install everything, then run critest against the bundled reference runtime, with a
# per-area summary and JUnit in reports/. The runtime pulls the offline test images from a local
# registry (the test bed), which is started before and cleaned up after. The runtime serves NRI, so
# the NRI specs run too. Extra arguments go to critest (e.g. --focus Image, or --runtime-handler crun).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"
exec critest-testbed run --runtime reference-runtime -- sh -c 'exec critest --parallel 2 \
    --test-images-file "$CRITEST_TEST_IMAGES_FILE" --nri-socket "$CRITEST_NRI_SOCKET" --report-dir reports --report-prefix reference-runtime "$@"' \
    critest "$@"
