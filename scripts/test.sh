#!/usr/bin/env bash
# The whole test suite: install, lint, then every test (unit, and end to end against real
# runc, containerd and a real registry on 127.0.0.1). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/ruff check .
# Everything is installed now: a test that skips for want of root or a package is a failure.
export CRI_TOOLS_STRICT_TESTBED=1
exec .venv/bin/python -m pytest "$@"
