#!/usr/bin/env bash
# Set up (if needed) and run the lint and the whole test suite (unit + end-to-end dvc repro).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
