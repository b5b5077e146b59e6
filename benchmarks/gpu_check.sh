#!/usr/bin/env bash
# The checks that need a GPU, as one short script: the CUDA tests, the default pipeline on
# CUDA with its wall time, the training benchmark at ML-20M size on CUDA, recommendation
# speed on CUDA, then the rest of the test suite (minus the app's tests) on a machine where
# every `device = "auto"` model trains on the GPU. About 8 minutes on an H200.
#
#     benchmarks/gpu_check.sh [LOG_FOLDER]
#
# Run it from the repository root with an interpreter ($PYTHON, default python3) that has
# CUDA torch and Penchant installed (`pip install torch -e '.[test]'` where pip reaches an
# index). Each step runs under its own time limit and a failed step does not stop the
# others; the exit status says whether every step passed. Step logs go to LOG_FOLDER
# (default: a temporary folder); everything measured is printed too.
set -uo pipefail
PY=${PYTHON:-python3}
LOGS=${1:-$(mktemp -d)}
mkdir -p "$LOGS"
export PENCHANT_HOME=${PENCHANT_HOME:-$(mktemp -d)}
export PYTHONUNBUFFERED=1
DEADLINE=$((SECONDS + ${GPU_CHECK_SECONDS:-540}))
FAILED=()

# step NAME LIMIT_S COMMAND...: run with a time limit (never past the deadline), log to
# $LOGS/NAME.log, print its tail and its wall time.
step() {
    local name=$1 limit=$2 left=$((DEADLINE - SECONDS))
    shift 2
    ((limit > left)) && limit=$left
    if ((limit < 10)); then
        echo "=== $name: skipped, the deadline is near"; FAILED+=("$name"); return
    fi
    echo "=== $name (limit ${limit} s): $*"
    local start=$SECONDS
    timeout -k 15 "$limit" "$@" >"$LOGS/$name.log" 2>&1
    local rc=$?
    tail -n "${TAIL:-25}" "$LOGS/$name.log"
    echo "=== $name: exit $rc after $((SECONDS - start)) s"
    ((rc == 0)) || FAILED+=("$name")
}

step environment 60 "$PY" -c "
import torch, pandas, numpy, penchant
print('torch', torch.__version__, '| cuda', torch.version.cuda, '| pandas', pandas.__version__,
      '| numpy', numpy.__version__)
print('device:', torch.cuda.get_device_name(0), '|', torch.cuda.get_device_properties(0))
assert torch.cuda.is_available()"

# The tests written for CUDA (skipped on CPU-only machines), on their own first.
step cuda-tests 120 "$PY" -m pytest -q -rs -p no:cacheprovider -k "cuda or device" \
    tests/test_training.py tests/test_models_autoencoders.py tests/test_evolution.py

# The README's run, on the GPU.
step default-pipeline 120 "$PY" -c "from penchant.cli import main; raise SystemExit(main())" \
    run resources/pipelines/default.toml --device cuda --out "$PENCHANT_HOME/default-run"

# Issue #8's GPU figure: vae epoch time at ML-20M size (140,000 users x 20,000 items,
# 10 M events).
step bench-train 180 "$PY" benchmarks/bench_train.py --sizes 1.0 --epochs 3 \
    --libraries penchant --device cuda --threads 8

step bench-recommend 120 "$PY" benchmarks/bench_recommend.py --device cuda --threads 8 \
    --items 10000 100000

# Everything else that needs no Qt, with models on the GPU wherever a test leaves the
# device to "auto"; in parallel when pytest-xdist is there, without the scaffold test that
# pip-installs generated plugins (copies of it beside each other see each other's
# half-installed packages).
XDIST=()
"$PY" -c "import xdist" 2>/dev/null && XDIST=(-n 8 -k "not installs_passes_its_tests")
TAIL=40 step suite 600 "$PY" -m pytest -q -rfEs -p no:cacheprovider --tb=short "${XDIST[@]}" \
    --ignore-glob='tests/test_gui_*' --ignore=tests/test_example_plugin.py \
    --ignore=tests/test_layout.py tests/

if ((${#FAILED[@]})); then
    echo "FAILED: ${FAILED[*]}"
    exit 1
fi
echo "every step passed"
