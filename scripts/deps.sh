#!/usr/bin/env bash
# Install what LuminaGuard needs to build, run and test on Debian 12 (as root).
# Idempotent: apt-get skips what is already there.
set -euo pipefail
pkgs=(
        build-essential        # gcc, make, libc static archive for lg-agent
        clang libclang-rt-14-dev  # libFuzzer + sanitizer runtimes for the fuzz target
        clang-format           # style is checked by the test target
        libjansson-dev         # JSON (QMP, reports)
        libssl-dev             # libcrypto: SHA-256 of image recipes
        libseccomp-dev         # the process backend's system-call allow-list
        libarchive-dev         # tar streams for workspace sync (copy in, change sets out)
        libncurses-dev         # the approval TUI
        libmicrohttpd-dev      # the MCP server's Streamable HTTP transport
        libcurl4-openssl-dev   # the HTTP client of `bench mcp`
        curl                   # raw HTTP requests in the MCP HTTP tests
        tmux                   # drives the TUI and the line prompt in the tests
        bubblewrap             # the process backend's benchmark peer (bench spawn --backend process)
        qemu-system-x86        # the VMM (microvm machine)
        busybox-static         # guest userland in the initramfs
        cpio gzip lz4          # initramfs assembly, kernel unpacking
        debootstrap e2fsprogs  # the full image: its Debian root and its ext4 disk
        procps                 # pgrep/pkill in tests
        python3                # JSON checks in the pool tests, the raw MCP test client
        nodejs                 # MCP peers from npm in the tests (inspector-cli, servers)
        ca-certificates
)
missing=()
for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ]; then
                echo "deps: need root to install: ${missing[*]}" >&2
                exit 1
        fi
        echo "deps: installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Debian's nodejs comes without npm; nodesource's includes it.
if ! command -v npm >/dev/null; then
        [ "$(id -u)" -eq 0 ] || { echo "deps: need root to install npm" >&2; exit 1; }
        echo "deps: installing npm"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends npm
fi
