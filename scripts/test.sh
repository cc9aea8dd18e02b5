#!/usr/bin/env bash
# Set up (if needed) and run the lint and the whole test suite (unit + end-to-end dvc repro).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
# two workers, one test file each at a time (tests/conftest.py: the tiny study is still built once);
# TEST_WORKERS=0 runs everything in this process
.venv/bin/python -m pytest -n "${TEST_WORKERS:-2}" --dist loadfile "$@"
