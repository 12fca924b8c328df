#!/usr/bin/env bash
# Sets up whatever is missing on a Debian 12 host, then builds the project. Idempotent: a second
# run installs nothing and rebuilds only what changed.
#   bash scripts/setup.sh          packages for the lab + npm dependencies + build
#   bash scripts/setup.sh --test   also what the test suites need (Chromium, code-server, and the
#                                  QEMU 10.0 / Linux 6.12 matrix unpacked from bookworm-backports into
#                                  .vlab-tools by scripts/matrix-tools.sh; never installed on the host;
#                                  OpenSSL's devcrypto engine built into .vlab-tools/devcrypto-engine
#                                  by scripts/devcrypto-engine.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# System packages the lab needs (see docs/architecture.md for why each one is there).
packages=(qemu-system-x86 qemu-utils linux-image-amd64 linux-headers-amd64 busybox-static
  openssh-server openssh-client tcpdump kcapi-tools openssl make gcc g++ python3 procps iproute2 libssl-dev
  xz-utils kmod gdb)
if [ "$want_test" = 1 ]; then
  packages+=(chromium fonts-liberation libkrb5-dev ripgrep linux-source curl binutils ca-certificates strace)
  packages+=(clangd) # code intelligence for guest/driver: its test runs clangd --check on every file
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  say "Debian packages: all present"
fi

# npm dependencies: reinstall when the lock file changed since the last install.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies"
  npm ci --no-audit --no-fund
else
  say "npm dependencies: up to date"
fi

say "building (native addon, TypeScript, extension bundle)"
npm run --silent build

if [ "$want_test" = 1 ] && [ -x scripts/install-code-server.sh ]; then
  bash scripts/install-code-server.sh
fi
if [ "$want_test" = 1 ]; then
  bash scripts/matrix-tools.sh
  bash scripts/devcrypto-engine.sh
fi
say "ready"
