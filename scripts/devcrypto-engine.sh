#!/usr/bin/env bash
# Builds OpenSSL's devcrypto engine (engines/e_devcrypto.c, which Debian 12 does not ship) as a
# loadable engine for the host's own OpenSSL 3.0, which is also the guest's (the guest runs the
# host's userland over 9p):
#   .vlab-tools/devcrypto-engine/devcrypto.so       (OPENSSL_ENGINES=.../devcrypto-engine)
# The source is the orig tarball of Debian's openssl source package of the installed libssl3
# version (apt-get source --download-only through a deb-src entry; if that fails, e.g. the
# security suite's .dsc 404s or the version left the index, the orig tarball straight from the
# Debian pool). Only e_devcrypto.c is taken out of it; OpenSSL's code is never committed.
# Idempotent: a finished build for the installed version (and ABI header) is kept.
#   bash scripts/devcrypto-engine.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/.."

force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "devcrypto-engine.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1m[devcrypto]\033[0m %s\n' "$*"; }
die() { printf '[devcrypto] error: %s\n' "$*" >&2; exit 1; }
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

out=$PWD/.vlab-tools/devcrypto-engine
src=$PWD/.vlab-tools/openssl-src
abi=$PWD/guest/driver/cryptodev_abi.h
srclist=/etc/apt/sources.list.d/vlab-deb-src.sources

# The engine must match the OpenSSL the guest loads: the host's libssl3/libcrypto.
version=$(dpkg-query -W -f='${Version}' libssl3 2>/dev/null) ||
  die "libssl3 is not installed (bash scripts/setup.sh installs openssl and libssl-dev)"
upstream=${version%%-*}
upstream=${upstream#*:}
# Rebuilt when the installed OpenSSL or our ABI header (the engine's cryptodev.h) changes.
stamp="$version $(sha256sum "$abi" | cut -c1-16)"
if [ "$force" = 0 ] && [ -f "$out/devcrypto.so" ] && [ "$(cat "$out/.vlab-complete" 2>/dev/null)" = "$stamp" ]; then
  say "engine for OpenSSL $version: already built ($out/devcrypto.so)"
  exit 0
fi
for tool in gcc curl tar nm; do
  command -v "$tool" >/dev/null || die "$tool is missing (bash scripts/setup.sh --test installs it)"
done
[ -f /usr/include/openssl/engine.h ] || die "libssl-dev is missing (bash scripts/setup.sh installs it)"

# 1. A deb-src entry for the suites the host's binaries come from.
if ! grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  say "adding Debian's source indexes to apt ($srclist)"
  $SUDO tee "$srclist" >/dev/null <<'EOF'
# Added by vlab scripts/devcrypto-engine.sh: apt-get source openssl (only e_devcrypto.c is built).
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  $SUDO apt-get update -q || die "apt-get update failed (network?)"
fi

# 2. The orig tarball of OpenSSL $upstream.
tarball=$src/openssl_$upstream.orig.tar.gz
mkdir -p "$src"
if [ ! -s "$tarball" ] || ! gzip -t "$tarball" 2>/dev/null; then
  rm -f "$tarball"
  say "fetching the openssl $version source package (apt-get source --download-only)"
  (cd "$src" && apt-get source -q --download-only "openssl=$version") >"$src/apt-source.log" 2>&1 ||
    say "apt-get source openssl=$version failed (see $src/apt-source.log); trying the orig tarball alone"
fi
if [ ! -s "$tarball" ] || ! gzip -t "$tarball" 2>/dev/null; then
  rm -f "$tarball"
  # The URI apt knows (any Debian revision of the same upstream), then the pools by name.
  uris=$( (apt-get source --print-uris -q "openssl=$version" 2>/dev/null || true;
           apt-cache showsrc openssl 2>/dev/null | sed -n 's/^Version: //p' | while read -r v; do
             if [ "${v%%-*}" = "$upstream" ]; then apt-get source --print-uris -q "openssl=$v" 2>/dev/null || true; fi
           done) | sed -n "s/^'\\([^']*openssl_${upstream//./\\.}\\.orig\\.tar\\.gz\\)'.*/\\1/p" | sort -u || true)
  uris="$uris
http://deb.debian.org/debian-security/pool/updates/main/o/openssl/openssl_$upstream.orig.tar.gz
http://deb.debian.org/debian/pool/main/o/openssl/openssl_$upstream.orig.tar.gz"
  for u in $uris; do
    say "fetching $u"
    if curl -fsSL --retry 3 -o "$tarball.part" "$u" && gzip -t "$tarball.part" 2>/dev/null; then
      mv "$tarball.part" "$tarball"
      break
    fi
    rm -f "$tarball.part"
  done
fi
[ -s "$tarball" ] || die "no source of OpenSSL $upstream found (tried apt-get source openssl=$version and the Debian pools); check the network or the deb-src entry in $srclist"

# 3. Only the engine's file, with stand-ins for the two headers of OpenSSL's tree it includes.
build=$out/build
rm -rf "$build"
mkdir -p "$build/engines" "$build/include/crypto"
tar -xzf "$tarball" -O "openssl-$upstream/engines/e_devcrypto.c" >"$build/engines/e_devcrypto.c" ||
  die "$tarball has no openssl-$upstream/engines/e_devcrypto.c"
# e_os.h: the engine uses only OSSL_NELEM from it.
cat >"$build/e_os.h" <<'EOF'
/* Stand-in for OpenSSL's internal e_os.h (vlab scripts/devcrypto-engine.sh). */
#ifndef VLAB_E_OS_H
#define VLAB_E_OS_H
#define OSSL_NELEM(x) (sizeof(x) / sizeof((x)[0]))
#endif
EOF
# crypto/cryptodev.h: cryptodev-linux's ABI, as our driver defines it, plus the algorithm numbers
# of cryptodev-linux's enum the driver never names (the engine lists them; the driver refuses them).
cat >"$build/include/crypto/cryptodev.h" <<EOF
/* Stand-in for cryptodev-linux's crypto/cryptodev.h (vlab scripts/devcrypto-engine.sh). */
#ifndef VLAB_CRYPTO_CRYPTODEV_H
#define VLAB_CRYPTO_CRYPTODEV_H
#include "$abi"
#define CRYPTO_DES_CBC		1
#define CRYPTO_BLF_CBC		3
#define CRYPTO_CAST_CBC		4
#define CRYPTO_SKIPJACK_CBC	5
#define CRYPTO_RIPEMD160_HMAC	8
#define CRYPTO_ARC4		12
#define CRYPTO_CAMELLIA_CBC	101
#define CRYPTO_RIPEMD160	102
#ifndef HASH_MAX_LEN
#define HASH_MAX_LEN		64
#endif
#endif
EOF
say "building devcrypto.so for OpenSSL $version"
gcc -shared -fPIC -O2 -Wall -Wno-deprecated-declarations -I"$build/include" \
  -o "$build/devcrypto.so" "$build/engines/e_devcrypto.c" -lcrypto ||
  die "compiling e_devcrypto.c failed"
mv "$build/devcrypto.so" "$out/devcrypto.so"
# A loadable engine exports OpenSSL's dynamic-engine entry points (it binds only where /dev/crypto
# exists: in the guest, not on the host).
nm -D --defined-only "$out/devcrypto.so" | grep -qw bind_engine ||
  die "$out/devcrypto.so exports no bind_engine"
echo "$stamp" >"$out/.vlab-complete"
say "ready: OPENSSL_ENGINES=$out openssl engine -t -c devcrypto"
