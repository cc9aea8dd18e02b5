#!/usr/bin/env bash
# Set up (if needed) and run the default study: `dvc repro` of params.yaml, offline, on CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source .venv/bin/activate  # dvc.yaml commands call `python`: the venv one
dvc repro "$@"
echo "report: reports/report.md and reports/report.html"
