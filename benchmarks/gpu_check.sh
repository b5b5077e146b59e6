#!/usr/bin/env bash
# The checks that need a GPU, as one short script for a lent device machine (see the
# README of the device tool): the CUDA tests, then the default pipeline on CUDA with its
# wall time, then the training benchmark at ML-20M size on CUDA. Run from the
# repository root; it prints everything it measures (about 5 minutes on an H200).
set -euo pipefail
python3 -m venv .venv-gpu
.venv-gpu/bin/pip install -q torch -e '.[test]'
.venv-gpu/bin/python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
.venv-gpu/bin/python -m pytest -q -rs -k "cuda or device" tests/
export PENCHANT_HOME="${OUT:-/tmp}/penchant-gpu"
/usr/bin/time -v .venv-gpu/bin/penchant run resources/pipelines/default.toml --device cuda \
    --out "$PENCHANT_HOME/run" 2>&1 | tail -40
# Issue #8's GPU figure: vae epoch time at ML-20M size (140,000 users × 20,000 items,
# 10 M events) on CUDA.
.venv-gpu/bin/python benchmarks/bench_train.py --sizes 1.0 --epochs 3 --libraries penchant \
    --device cuda --threads 8 --folder "${OUT:-/tmp}/bench-train"
