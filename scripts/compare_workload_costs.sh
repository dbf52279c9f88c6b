#!/usr/bin/env bash
# Before/after costs of two checkouts, each with its own .venv: evals interleaved per workload and framework,
# then data generation / cache loads, then JAX compilation, one process per measurement, pinned to one core.
#
#   bash scripts/compare_workload_costs.sh OLD_CHECKOUT NEW_CHECKOUT OUT_FOLDER
#
# CORE (default 1) is the core; WORKLOADS and FRAMEWORKS narrow the runs. The parameters evaluated are trained
# once by the new checkout (OUT_FOLDER/params). Results: OUT_FOLDER/{evals,data,compile}.jsonl, one JSON
# object per line, and OUT_FOLDER/load.txt, the load average before each measurement.
set -u
OLD=$1 NEW=$2 OUT=$(realpath -m "$3")
SCRIPT=$(dirname "$(realpath "$0")")/workload_costs.py
CORE=${CORE:-1}
WORKLOADS=${WORKLOADS:-mnist criteo1tb_mini fastmri_mini imagenet_resnet_mini imagenet_vit_mini \
    librispeech_conformer_mini librispeech_deepspeech_mini ogbg_mini wmt_mini}
FRAMEWORKS=${FRAMEWORKS:-pytorch jax}
mkdir -p "$OUT/caches"
measure() {  # CHECKOUT LABEL ARGS...: one JSON line {"case": LABEL, "r": {...}}
    local checkout=$1 label=$2
    shift 2
    echo "$label: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/load.txt"
    printf '{"case": "%s", "r": %s}\n' "$label" \
        "$(taskset -c "$CORE" "$checkout/.venv/bin/python" "$SCRIPT" "$@" 2>>"$OUT/errors.txt" || echo null)"
}
[ -d "$OUT/params" ] || taskset -c "$CORE" "$NEW/.venv/bin/python" "$SCRIPT" train --params "$OUT/params" \
    --workloads $WORKLOADS --frameworks $FRAMEWORKS >"$OUT/train.jsonl"
for w in $WORKLOADS; do
    for f in $FRAMEWORKS; do
        measure "$OLD" "eval before" eval --params "$OUT/params" --workload "$w" --framework "$f"
        measure "$NEW" "eval after" eval --params "$OUT/params" --workload "$w" --framework "$f"
    done
done >>"$OUT/evals.jsonl"
for w in $WORKLOADS; do
    export PYTEST_ALGOPERF_CACHE_DIR="$OUT/caches/$w"
    measure "$OLD" "data before" data --workload "$w"
    measure "$NEW" "data after, cache cold" data --workload "$w"
    measure "$NEW" "data after, cache warm" data --workload "$w"
done >>"$OUT/data.jsonl"
for w in $WORKLOADS; do
    export PYTEST_ALGOPERF_CACHE_DIR="$OUT/caches/$w"
    measure "$OLD" "compile before" compile --workload "$w"
    measure "$NEW" "compile after, eval cache cold" compile --workload "$w"
    measure "$NEW" "compile after, eval cache warm" compile --workload "$w"
    for state in cold warm; do
        JAX_COMPILATION_CACHE_DIR="$OUT/caches/jax-all-$w" JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 \
            measure "$NEW" "compile after, JAX_COMPILATION_CACHE_DIR $state" compile --workload "$w"
    done
done >>"$OUT/compile.jsonl"
