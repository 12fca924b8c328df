#!/usr/bin/env bash
# Installs code-server 4.100.3 (VS Code 1.100.3, the newest that runs on Node 20) into the
# git-ignored folder .vlab-tools/code-server/ so the extension suites can run a real VS Code
# (workbench in Debian's Chromium, extension host in Node). Nothing goes to $HOME or the global
# prefix. Idempotent: a second run only checks the marker file and exits.
#
# Why the long recipe (docs/extension.md "Testing"): a plain `npm i code-server` fails on these
# machines (its install scripts fetch ripgrep from GitHub and build native modules in an order
# npm 11 does not run), so the scripts are run by hand in the order code-server's own
# postinstall expects, with Debian's `rg` standing in for the downloaded one.
#   bash scripts/install-code-server.sh            install if missing
#   bash scripts/install-code-server.sh --force    reinstall
set -euo pipefail
cd "$(dirname "$0")/.."

version=4.100.3
root="$PWD/.vlab-tools/code-server"
marker="$root/.installed-$version"
say() { printf '\033[1m[code-server]\033[0m %s\n' "$*"; }

if [ "${1:-}" = "--force" ]; then rm -rf "$root"; fi
if [ -f "$marker" ] && [ -x "$root/node_modules/.bin/code-server" ]; then
  say "$version already installed in ${root#$PWD/}"
  exit 0
fi
for tool in rg node npm; do
  command -v "$tool" >/dev/null || { echo "install-code-server.sh: '$tool' is missing (scripts/setup.sh --test installs it)" >&2; exit 1; }
done

start=$(date +%s)
say "installing $version into ${root#$PWD/} (about 70 s, 300 MB)"
rm -rf "$root"
mkdir -p "$root"
# npm's own cache stays inside the tools folder too, so nothing lands in $HOME.
export npm_config_cache="$root/.npm-cache"
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
cat >"$root/package.json" <<EOF
{ "name": "vlab-code-server", "private": true, "dependencies": { "code-server": "$version" } }
EOF

cd "$root"
npm install --ignore-scripts --no-save "code-server@$version" >/dev/null
npm rebuild argon2 >/dev/null 2>&1

cs="$root/node_modules/code-server"
(cd "$cs/lib/vscode" && npm install --omit=dev --ignore-scripts --no-save >/dev/null)

# The ripgrep package downloads a binary from GitHub in its install script; use Debian's instead.
for rgdir in "$cs/lib/vscode/node_modules/@vscode/ripgrep" "$cs/node_modules/@vscode/ripgrep"; do
  if [ -d "$rgdir" ]; then
    mkdir -p "$rgdir/bin"
    ln -sf "$(command -v rg)" "$rgdir/bin/rg"
  fi
done

(cd "$cs/lib/vscode" && npm_config_yes=true npm rebuild >/dev/null 2>&1) || say "note: some optional native rebuilds in lib/vscode failed (not needed for tests)"
# postinstall.sh reads npm's user agent (it is normally run by npm) to pick npm and check Node 20.
(cd "$cs" && npm_config_user_agent="npm/$(npm -v) node/$(node -v) linux x64" \
  npm_config_unsafe_perm=true sh ./postinstall.sh >/dev/null)

"$root/node_modules/.bin/code-server" --version >/dev/null
rm -rf "$root/.npm-cache"
touch "$marker"
say "installed in $(( $(date +%s) - start )) s"
