#!/usr/bin/env bash
# Regenerates the design report's capture evidence (docs/report/evidence/z1.txt, z2.txt, z3.txt):
# Z1 plain chat, Z2 encrypted chat (host only), Z3 the same chat with its guest peer on /dev/crypto
# through our driver and the TS backend (boots a VM: on a shared machine wrap this in vmslot).
# Every transcript is the real output of the commands it shows, plus the first MESSAGE frame
# (chat frame type 4) of the capture as tcpdump prints it.
#   usage: scripts/report-evidence.sh [z1] [z2] [z3]     (default: all three)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out="$repo/docs/report/evidence"
vlab() { node "$repo/bin/vlab.js" "$@"; }
# vlab runs from the repository (its workspace); the captures are *.pcap there (gitignored), removed at exit.
cd "$repo"
trap 'rm -f z1.pcap z2.pcap z3.pcap' EXIT
mkdir -p "$out"

header() {
  printf '# %s commit %s, load average %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    "$(git -C "$repo" rev-parse --short HEAD)" "$(cut -d' ' -f1-3 /proc/loadavg)"
}

# First MESSAGE frame: TCP payload byte 1 is the chat frame's type (4 = MESSAGE).
first_message() {
  local pcap=$1 note=$2 filter=${3:-'tcp[((tcp[12]&0xf0)>>2)+1] = 4'}
  printf '\n$ tcpdump -nn -X -c 1 -r %s '\''%s'\''   (%s)\n' "$(basename "$pcap")" "$filter" "$note"
  tcpdump -nn -X -c 1 -r "$pcap" "$filter" 2>/dev/null
}

run_shown() {
  printf '$ vlab %s\n' "$*"
  vlab "$@" 2>&1
}

host_pair() {
  local name=$1 crypto=$2
  {
    header
    run_shown chat pair --crypto "$crypto" --capture "$name.pcap"
    first_message "$name.pcap" 'first MESSAGE frame, type 4; the chat frame starts at 0x0034'
  } >"$out/$name.txt"
  echo "wrote $out/$name.txt"
}

guest_pair() {
  local state
  state=$(mktemp -d)
  export VLAB_STATE_DIR="$state"
  {
    header
    run_shown up --guest-driver lab
    run_shown chat pair --guest --crypto software --peer-crypto cryptodev --capture z3.pcap || true
    run_shown down
    first_message z3.pcap 'first MESSAGE frame, type 4, from the guest (10.0.2.15); no TCP options: the chat frame starts at 0x0028' \
      'src host 10.0.2.15 and tcp[((tcp[12]&0xf0)>>2)+1] = 4'
  } >"$out/z3.txt"
  vlab down >/dev/null 2>&1 || true
  rm -rf "$state"
  unset VLAB_STATE_DIR
  echo "wrote $out/z3.txt"
}

which=("$@")
[ ${#which[@]} -eq 0 ] && which=(z1 z2 z3)
for w in "${which[@]}"; do
  case $w in
    z1) host_pair z1 none ;;
    z2) host_pair z2 software ;;
    z3) guest_pair ;;
    *) echo "unknown step $w (z1, z2 or z3)" >&2; exit 2 ;;
  esac
done
