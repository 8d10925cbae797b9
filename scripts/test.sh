#!/usr/bin/env bash
# npm test: everything, in order, stopping at the first failure. Installs what the tests need first
# (ONNX test data from Debian, Node 24 + code-server + Chromium for the real VS Code tests).
# Ends with one line adding up every suite: "total: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
LOG="$(mktemp -d)"
trap 'rm -rf "$LOG"' EXIT
step() { printf '\n== %s\n' "$1"; }
passed=0
failed=0
# runs a suite with its output shown and kept, then adds its counts
suite() {
  local name="$1"
  shift
  set +e
  "$@" 2>&1 | tee "$LOG/$name.log"
  local rc=${PIPESTATUS[0]}
  set -e
  local p f
  if grep -q '^# pass ' "$LOG/$name.log"; then
    p=$(grep '^# pass ' "$LOG/$name.log" | tail -1 | awk '{print $3}')
    f=$(grep '^# fail ' "$LOG/$name.log" | tail -1 | awk '{print $3}')
  else
    p=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$LOG/$name.log" | tail -1 | awk '{print $1}')
    f=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$LOG/$name.log" | tail -1 | awk '{print $3}')
  fi
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
  if [ "$rc" -ne 0 ]; then
    printf '\ntotal: %d passed, %d failed\n' "$passed" "$((failed > 0 ? failed : 1))"
    exit "$rc"
  fi
}
step "setup (test data, code-server, chromium)"
npm run -s test:setup
step "build"
npm run -s build
step "typecheck"
npm run -s typecheck
step "lint"
npm run -s lint
step "unit tests (node --test)"
suite unit npm run -s test:unit
step "extension-host tests (code-server)"
suite exthost npm run -s test:exthost
step "UI tests (code-server + Chromium)"
suite ui npm run -s test:ui
printf '\ntotal: %d passed, %d failed\n' "$passed" "$failed"
