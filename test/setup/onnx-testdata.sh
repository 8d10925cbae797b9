#!/usr/bin/env bash
# Fetch ONNX's own backend test data (Debian package libonnx-testdata) into .cache/onnx-testdata/.
# Idempotent: does nothing when the folder is already there. Run from anywhere.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEST="$ROOT/.cache/onnx-testdata"
if [ -d "$DEST/node" ]; then
  echo "onnx-testdata: already present in $DEST"
  exit 0
fi
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
if ! apt-get download libonnx-testdata >/dev/null 2>&1; then
  echo "onnx-testdata: apt-get download failed, running apt-get update first" >&2
  apt-get update >/dev/null
  apt-get download libonnx-testdata
fi
dpkg -x ./libonnx-testdata_*.deb extracted
# Debian keeps the tree in /usr/share/libonnx-testdata/data (what upstream ships as onnx/backend/test/data);
# take the first real directory that has a node/ sub-folder.
SRC="$(find extracted -type d -name node -path '*data/node' -printf '%h\n' | sort | head -n 1)"
if [ -z "$SRC" ] || [ ! -d "$SRC/node" ]; then
  echo "onnx-testdata: no onnx/backend/test/data/node folder in the package" >&2
  exit 1
fi
mkdir -p "$(dirname "$DEST")"
rm -rf "$DEST.partial"
cp -r "$SRC" "$DEST.partial"
mv "$DEST.partial" "$DEST"
echo "onnx-testdata: installed $(find "$DEST/node" -name model.onnx | wc -l) node test models into $DEST"
