#!/usr/bin/env bash
# Unpacks the test matrix's newer QEMU and kernel from Debian bookworm-backports into .vlab-tools/
# (apt-get download + dpkg -x; nothing is installed into the host's /usr, /boot or /lib/modules):
#   .vlab-tools/qemu-10.0/usr/bin/qemu-system-x86_64   (vlab up --qemu ...; firmware in usr/share/qemu)
#   .vlab-tools/linux-6.12/                             (vlab up --kernel ...; boot/, lib/modules/R, usr/src headers)
# Idempotent and cached: a complete unpack is kept (stamp file) and nothing is fetched again.
#   bash scripts/matrix-tools.sh [--refresh]   (--refresh: look for newer backports versions)
set -euo pipefail
cd "$(dirname "$0")/.."

refresh=0
for arg in "$@"; do
  case "$arg" in
    --refresh) refresh=1 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "matrix-tools.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1m[tools]\033[0m %s\n' "$*"; }
die() { printf '[tools] error: %s\n' "$*" >&2; exit 1; }
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

tools=$PWD/.vlab-tools
debs=$tools/debs
qemu_dir=$tools/qemu-10.0
linux_dir=$tools/linux-6.12
sources=/etc/apt/sources.list.d/vlab-bookworm-backports.sources
prefs=/etc/apt/preferences.d/vlab-bookworm-backports

if [ "$refresh" = 0 ] && [ -f "$qemu_dir/.vlab-complete" ] && [ -f "$linux_dir/.vlab-complete" ]; then
  say "QEMU $(cat "$qemu_dir/.vlab-complete") and Linux $(cat "$linux_dir/.vlab-complete"): already unpacked in .vlab-tools"
  exit 0
fi

# 1. bookworm-backports as an apt source, pinned below every installed package (priority < 100: apt
#    never installs or upgrades anything from it on its own; we only download by explicit name/suite).
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  say "adding bookworm-backports to apt's sources ($sources)"
  $SUDO tee "$sources" >/dev/null <<'EOF'
# Added by vlab scripts/matrix-tools.sh: newer QEMU and kernels for the lab's test matrix.
# Pinned low in /etc/apt/preferences.d/vlab-bookworm-backports: nothing is installed or upgraded from
# here unless asked for by name; the lab only downloads and unpacks packages (apt-get download + dpkg -x).
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
fi
if [ ! -f "$prefs" ]; then
  say "pinning bookworm-backports at priority 50 ($prefs)"
  $SUDO tee "$prefs" >/dev/null <<'EOF'
Package: *
Pin: release n=bookworm-backports
Pin-Priority: 50
EOF
fi
if [ "$refresh" = 1 ] || ! apt-cache madison qemu-system-x86 2>/dev/null | grep bookworm-backports >/dev/null; then
  say "apt-get update (bookworm-backports)"
  $SUDO apt-get update -q >/dev/null
fi

bpo_version() { apt-cache madison "$1" | awk -F' *[|] *' '/bookworm-backports/ { print $2; exit }'; }
qemu_version=$(bpo_version qemu-system-x86)
[ -n "$qemu_version" ] || die "qemu-system-x86 not found in bookworm-backports"
case "$qemu_version" in *:10.0.*) ;; *) die "bookworm-backports has QEMU $qemu_version, not 10.0" ;; esac
# The versioned kernel package the backports meta-package points at, e.g. linux-image-6.12.95+deb12-amd64.
kimage=$(apt-cache depends linux-image-amd64/bookworm-backports 2>/dev/null | awk '/Depends: linux-image-6\.12/ { print $2; exit }')
[ -n "$kimage" ] || die "no Linux 6.12 image in bookworm-backports"
release=${kimage#linux-image-}
abi=${release%-amd64}
kernel_pkgs=("$kimage" "linux-headers-$release" "linux-headers-$abi-common" "linux-kbuild-$abi")

fetch() { # fetch PACKAGE... : apt-get download into .vlab-tools/debs unless already there
  mkdir -p "$debs"
  local p
  for p in "$@"; do
    if ! ls "$debs/${p}_"*.deb >/dev/null 2>&1; then
      say "downloading $p"
      (cd "$debs" && apt-get download -q -o APT::Sandbox::User=root "$p/bookworm-backports" >/dev/null)
    fi
  done
}
unpack() { # unpack DIR STAMP PACKAGE... : dpkg -x into DIR.tmp, then rename (a half unpack never looks done)
  local dir=$1 stamp=$2 p
  shift 2
  rm -rf "$dir.tmp"
  mkdir -p "$dir.tmp"
  for p in "$@"; do
    say "unpacking $p"
    dpkg -x "$(ls "$debs/${p}_"*.deb | tail -1)" "$dir.tmp"
  done
  echo "$stamp" >"$dir.tmp/.vlab-stamp"
}

# 2. QEMU 10.0: the system emulator, its common files and firmware.
if [ "$(cat "$qemu_dir/.vlab-complete" 2>/dev/null)" != "$qemu_version" ]; then
  fetch qemu-system-x86 qemu-system-common qemu-system-data
  unpack "$qemu_dir" "$qemu_version" qemu-system-x86 qemu-system-common qemu-system-data
  missing=$(ldd "$qemu_dir.tmp/usr/bin/qemu-system-x86_64" | awk '/not found/ { print $1 }')
  [ -z "$missing" ] || die "QEMU $qemu_version needs libraries bookworm lacks: $missing"
  "$qemu_dir.tmp/usr/bin/qemu-system-x86_64" --version | head -1 | sed 's/^/[tools] /'
  rm -rf "$qemu_dir"
  mv "$qemu_dir.tmp" "$qemu_dir"
  echo "$qemu_version" >"$qemu_dir/.vlab-complete"
else
  say "QEMU $qemu_version: already unpacked"
fi

# 3. Linux 6.12: image + modules, headers (arch + common) and kbuild, made usable where they lie.
if [ "$(cat "$linux_dir/.vlab-complete" 2>/dev/null)" != "$release" ]; then
  fetch "${kernel_pkgs[@]}"
  unpack "$linux_dir" "$release" "${kernel_pkgs[@]}"
  t=$linux_dir.tmp
  # The package's postinst runs depmod; we run it on the unpacked tree (modules.dep for modprobe and the initramfs).
  say "depmod $release"
  depmod -b "$t" "$release"
  # Headers: lib/modules/R/{build,source} and the arch headers' Makefile point at /usr/src absolutely;
  # make them relative so the tree works where it lies (and after the project folder moves).
  ln -sfn "../../../usr/src/linux-headers-$release" "$t/lib/modules/$release/build"
  ln -sfn "../../../usr/src/linux-headers-$abi-common" "$t/lib/modules/$release/source"
  sed -i "s#^include /usr/src/linux-headers-$abi-common/#include ../linux-headers-$abi-common/#" "$t/usr/src/linux-headers-$release/Makefile"
  grep -q "^include ../linux-headers-$abi-common/Makefile" "$t/usr/src/linux-headers-$release/Makefile" \
    || die "unexpected headers Makefile layout in linux-headers-$release"
  rm -rf "$linux_dir"
  mv "$t" "$linux_dir"
  echo "$release" >"$linux_dir/.vlab-complete"
else
  say "Linux $release: already unpacked"
fi
say "ready: vlab up --qemu .vlab-tools/qemu-10.0/usr/bin/qemu-system-x86_64 --kernel .vlab-tools/linux-6.12"
