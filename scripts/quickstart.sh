#!/usr/bin/env bash
# Quick start on a fresh Debian 12 machine, as root: install dependencies,
# build, install to /usr/local, build the guest image (first use), and run a
# command in a throwaway micro-VM.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
make -j"$(nproc)"
make install PREFIX=/usr/local >/dev/null
echo "+ luminaguard doctor"
luminaguard doctor || true
echo "+ luminaguard run -- uname -a"
exec luminaguard run -- uname -a
