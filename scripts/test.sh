#!/usr/bin/env bash
# npm test: everything, in order, stopping at the first failure. Installs what the tests need first
# (ONNX test data from Debian, Node 24 + code-server + Chromium for the real VS Code tests).
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n== %s\n' "$1"; }
step "setup (test data, code-server, chromium)"
npm run -s test:setup
step "build"
npm run -s build
step "typecheck"
npm run -s typecheck
step "lint"
npm run -s lint
step "unit tests (node --test)"
npm run -s test:unit
step "extension-host tests (code-server)"
npm run -s test:exthost
step "UI tests (code-server + Chromium)"
npm run -s test:ui
