#!/usr/bin/env bash
# Set up everything transferlab needs on a fresh machine (idempotent):
# Fashion-MNIST from Debian (when run as root and missing), a venv in .venv with the
# package and its pinned dependency ranges, and a DVC repo.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d /usr/share/datasets/fashion-mnist ] && [ -z "${FASHION_MNIST_DIR:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "note: Fashion-MNIST not found; run 'sudo apt-get install dataset-fashion-mnist'" \
         "or set FASHION_MNIST_DIR (else it is downloaded by torchvision when online)" >&2
  fi
fi

PY=${PYTHON:-python3}
stamp=.venv/.transferlab-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/python -m pip install -q -e '.[dev]' 2>&1 | grep -v "is ignored" || true
  .venv/bin/python -c "import torch, torchvision, dvc, transferlab" || { echo "setup failed: see pip output above" >&2; exit 1; }
  echo "$want" > "$stamp"
fi

if [ ! -d .dvc ]; then
  [ -d .git ] || git init -q
  .venv/bin/dvc init -q
fi
