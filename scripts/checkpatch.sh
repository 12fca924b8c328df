#!/usr/bin/env bash
# Runs the kernel's checkpatch.pl over the guest driver. Debian's linux-headers do not ship it, so it is
# taken from the linux-source package's tarball (extracted once into .vlab-tools/checkpatch/).
#   bash scripts/checkpatch.sh [--strict]     exit 0 when there are no errors and no warnings
#   VLAB_CHECKPATCH_DIR=DIR                   check DIR's *.c and *.h instead of guest/driver
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.vlab-tools/checkpatch
if [ ! -x "$dest/scripts/checkpatch.pl" ]; then
  tarball=$(ls /usr/src/linux-source-*.tar.xz 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$tarball" ]; then
    echo "checkpatch.sh: no kernel source tarball; install it: sudo apt-get install -y linux-source" >&2
    exit 3
  fi
  top=$(basename "$tarball" .tar.xz)
  mkdir -p "$dest.tmp"
  tar -xJf "$tarball" -C "$dest.tmp" "$top/scripts/checkpatch.pl" "$top/scripts/spelling.txt" "$top/scripts/const_structs.checkpatch"
  rm -rf "$dest" && mv "$dest.tmp/$top" "$dest" && rmdir "$dest.tmp"
fi
root=$PWD
cd "${VLAB_CHECKPATCH_DIR:-guest/driver}"
perl "$root/$dest/scripts/checkpatch.pl" --no-tree --terse --show-types "$@" -f ./*.c ./*.h
