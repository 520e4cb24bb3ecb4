#!/usr/bin/env bash
# The whole test suite (what CI runs): dependencies, build, then tests/run-all.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
make -j"$(nproc)"
exec tests/run-all.sh
