#!/usr/bin/env bash
# The GPU check behind the README's GPU table: the clock-synchronisation tests (tests/test_gpu.py), then
# `pytest --algoperf-submission=adamw --algoperf-device=cuda` on each workload in both frameworks.
#
#   OUT=folder bash scripts/gpu_check.sh [workload ...]
#
# FRAMEWORKS (default pytorch,jax) narrows the frameworks; SKIP_INSTALL=1 and SKIP_CLOCK_TESTS=1 skip steps.
# PROFILE is the hardware profile whose budgets apply (default cpu-1thread: the CPU's budgets, borrowed
# knowingly, as the README's GPU table was measured; PROFILE=auto uses the GPU's own profile, once calibrated).
# Each workload runs in its own pytest process under a wall-clock limit (WORKLOAD_TIMEOUT seconds, default
# 75); results.json is written after each run, so a workload cut short keeps its finished runs. Full outputs go to RUNS
# (default /tmp/algoperf-gpu); OUT gets the logs and gpu_summary.json, one line per run.
set -u
OUT=${OUT:-.algoperf-gpu}
RUNS=${RUNS:-/tmp/algoperf-gpu}
DEVICE=${DEVICE:-cuda}
PROFILE=${PROFILE:-cpu-1thread}
mkdir -p "$OUT" "$RUNS"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false  # PyTorch and JAX share the GPU in one process
PYTHON=${PYTHON:-python3}

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
    "$PYTHON" -m pip install -q --no-deps --no-build-isolation -e . >"$OUT/install.log" 2>&1 ||
        { tail -20 "$OUT/install.log"; exit 1; }
fi
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null
  "$PYTHON" -c "import torch, jax; print('torch', torch.__version__, 'jax', jax.__version__, jax.devices())"
} >"$OUT/machine.txt" 2>&1
if [ "${SKIP_CLOCK_TESTS:-0}" != 1 ]; then
    "$PYTHON" -m pytest -p no:cacheprovider -q tests/test_gpu.py >"$OUT/clock_tests.log" 2>&1
    tail -3 "$OUT/clock_tests.log"
fi

workloads=${*:-mnist criteo1tb_mini ogbg_mini imagenet_vit_mini imagenet_resnet_mini fastmri_mini wmt_mini \
    librispeech_conformer_mini librispeech_deepspeech_mini}
for workload in $workloads; do
    started=$(date +%s)
    timeout -k 10 "${WORKLOAD_TIMEOUT:-75}" "$PYTHON" -m pytest -p no:cacheprovider -q \
        --algoperf-submission=adamw --algoperf-device="$DEVICE" --algoperf-framework="${FRAMEWORKS:-pytorch,jax}" \
        --algoperf-workloads="$workload" --algoperf-output="$RUNS/$workload" \
        --algoperf-hardware-profile="$PROFILE" >>"$OUT/runs.log" 2>&1
    echo "$workload: exit $? after $(($(date +%s) - started)) s" | tee -a "$OUT/runs.log"
done

"$PYTHON" - "$RUNS" "$OUT/gpu_summary.json" <<'PY'
import json, sys
from pathlib import Path

rows = []
for path in sorted(Path(sys.argv[1]).glob("*/results.json")):
    for run in json.loads(path.read_text())["runs"]:
        keys = ("workload", "framework", "device", "reached", "test_reached", "time_to_target",
                "steps_to_target", "global_step", "submission_time", "budget_sec", "stop_reason", "error")
        rows.append({key: run.get(key) for key in keys})
Path(sys.argv[2]).write_text(json.dumps(rows, indent=1))
for row in rows:
    print(row)
PY
