#!/usr/bin/env bash
# gan.long: the course's long GAN runs (7800 iterations, sheets at 1000/3000/5000/7800, width 64,
# the DCGAN paper's Adam lr 2e-4) as one DVC experiment over the default params; meant for a GPU
# (set base.device or leave it auto). Only the gan@<variant> stages and the report re-run.
#
#   bash scripts/gan-long.sh [extra dvc exp run options, e.g. -S base.device=cuda]
#
# Compare with the default (CPU-budget) recipe: dvc exp show --only-changed / dvc metrics diff.
set -euo pipefail
cd "$(dirname "$0")/.."
WIDTH=64
LONG=(
  -S gan.iterations=7800 -S 'gan.checkpoints=[1000,3000,5000]' -S gan.lr=0.0002 -S gan.num_threads=0
  -S gan.configs.cgan.iterations=7800
)
for variant in dcgan dcgan_nz10 cdcgan cdcgan_nolabel_d; do
  LONG+=(-S "gan.configs.$variant.width=$WIDTH")
done
exec .venv/bin/dvc exp run -n gan-long "${LONG[@]}" "$@" gan report
