"""What the built-in workloads cost outside the training steps: evaluation, data generation, JAX compilation.

A measurement tool, not a test: it prints one JSON object per line and is meant to be run pinned to one
core with one thread (``taskset -c 1``), as the budgets were calibrated. It imports only the Workload API,
the registry and the AdamW submission, so the same file measures an older checkout when run with that
checkout's interpreter (``/old/.venv/bin/python scripts/workload_costs.py ...``): before/after comparisons
use the same parameters (saved by ``train``) and alternate between the two interpreters.

    python scripts/workload_costs.py train --params DIR [--workloads ...] [--frameworks ...]
    python scripts/workload_costs.py eval --params DIR --workload W --framework F [--repeats 3] [--profile]
    python scripts/workload_costs.py data --workload W        # generation (or cache load) of every split
    python scripts/workload_costs.py compile --workload W     # JAX: first eval and first AdamW step

``train`` runs the AdamW baseline for a quarter of each workload's calibrated steps, so decoding (WMT's
greedy translations, CTC's best paths) and metrics see a model that has learned something, and saves the
parameters and model state as ``.npz`` (never pickle). ``eval`` loads them into a freshly initialised model
and times ``eval_model``: the first call (for JAX, compiling), then ``repeats`` calls, then each split alone;
the seconds of one call by part (forward passes, host-to-device moves, each metric function); and with
``--profile`` pyinstrument's call tree of one call. Eval and data seconds are CPU seconds of this process
(one thread), which other processes on the same core barely change; ``eval_wall_seconds`` and ``compile``'s
seconds are wall time. ``scripts/compare_workload_costs.sh OLD NEW OUT`` runs all of it for two checkouts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pytest_algoperf.registry import default_suite

BASE_WORKLOADS = default_suite()
TRAIN_SHARE_OF_STEPS = 0.25
ROOT = Path(__file__).resolve().parents[1]
# The metric functions whose time ``timed_parts`` reports apart (under the names of the parts).
METRIC_FUNCTIONS = {
    "batch_ssim": "ssim",
    "greedy_ctc_decode": "ctc_decode",
    "word_errors": "wer",
    "corpus_bleu": "bleu",
    "corpus_bleu_of_tokens": "bleu",
    "mean_average_precision": "mean_average_precision",
    "log_loss": "log_loss",
    "cross_entropy": "cross_entropy",
    "sigmoid_cross_entropy": "cross_entropy",
    "accuracy": "accuracy",
}


def one_thread() -> None:
    """One thread in both frameworks, before JAX's backend starts (the calibration's setting)."""
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    ).strip()
    import torch

    torch.set_num_threads(1)


def make_rng(framework: str, seed: int) -> Any:
    if framework == "jax":
        import jax

        return jax.random.PRNGKey(seed)
    return np.array([seed, 1], dtype=np.uint32)


def create(workload_name: str, framework: str) -> Any:
    from pytest_algoperf.registry import builtin_entries

    entry = next(entry for entry in builtin_entries() if entry.name == workload_name)
    return entry.create(framework, None, "cpu")


# ---- parameters as .npz --------------------------------------------------------------------------------


def flat_state(framework: str, params: Any, model_state: Any) -> dict[str, np.ndarray]:
    """Parameters and model state as named numpy arrays (a module's state_dict, or a JAX tree's paths)."""
    if framework == "pytorch":
        return {name: value.detach().cpu().numpy() for name, value in params.state_dict().items()}
    import jax

    flat = {}
    for prefix, tree in (("params", params), ("state", model_state)):
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
            flat[prefix + "/" + "/".join(str(getattr(p, "key", p)) for p in path)] = np.asarray(leaf)
    return flat


def load_state(framework: str, params: Any, model_state: Any, flat: dict[str, np.ndarray]) -> tuple[Any, Any]:
    """``params`` and ``model_state`` (freshly initialised) with the values of ``flat``."""
    if framework == "pytorch":
        import torch

        params.load_state_dict({name: torch.from_numpy(value) for name, value in flat.items()})
        return params, model_state
    import jax
    import jax.numpy as jnp

    def restore(prefix: str, tree: Any) -> Any:
        def leaf(path: Any, value: Any) -> Any:
            return jnp.asarray(flat[prefix + "/" + "/".join(str(getattr(p, "key", p)) for p in path)])

        return jax.tree_util.tree_map_with_path(leaf, tree)

    return restore("params", params), restore("state", model_state)


def params_file(folder: Path, workload_name: str, framework: str) -> Path:
    return folder / f"{workload_name}-{framework}.npz"


def trained(workload: Any, framework: str, folder: Path) -> tuple[Any, Any]:
    params, model_state = workload.init_model_fn(make_rng(framework, 0))
    with np.load(params_file(folder, workload.name, framework)) as saved:
        return load_state(framework, params, model_state, dict(saved))


def train(workload_name: str, framework: str, folder: Path) -> dict[str, Any]:
    """AdamW at its first search-space point for a quarter of the calibrated steps; saves the result."""
    from collections import namedtuple

    from pytest_algoperf.submission import load_submission, resolve_submission

    hyper = namedtuple(
        "Hyperparameters",
        "learning_rate one_minus_beta1 beta2 weight_decay warmup_factor label_smoothing dropout_rate",
    )(0.002, 0.1, 0.999, 0.01, 0.05, 0.0, 0.0)
    workload = create(workload_name, framework)
    submission = load_submission(resolve_submission("adamw", framework, ROOT))
    params, model_state = workload.init_model_fn(make_rng(framework, 0))
    optimizer_state = submission.module.init_optimizer_state(
        workload, params, model_state, hyper, make_rng(framework, 1)
    )
    batch_size = submission.get_batch_size(workload.name, workload.base_name)
    queue = workload.build_input_queue(make_rng(framework, 2), "train", None, batch_size)
    steps = int(TRAIN_SHARE_OF_STEPS * workload.step_hint)
    started = time.perf_counter()
    for step in range(steps):
        optimizer_state, params, model_state = submission.module.update_params(
            workload, params, workload.model_params_types, model_state, hyper, next(queue),
            workload.loss_type, optimizer_state, [], step, make_rng(framework, 10 + step),
        )  # fmt: skip
    seconds = time.perf_counter() - started
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(params_file(folder, workload_name, framework), **flat_state(framework, params, model_state))
    rng = make_rng(framework, 3)
    metrics = workload.eval_model(workload.eval_batch_size, params, model_state, rng, None, 0)
    return {"steps": steps, "train_seconds": round(seconds, 2), "metrics": metrics}


# ---- evaluation ----------------------------------------------------------------------------------------


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    """CPU seconds of this process (one thread: robust to other processes on the core) and the value."""
    started = time.process_time()
    value = function()
    return time.process_time() - started, value


def wall_timed(function: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


def only_split(split: str) -> Any:
    """A context in which ``eval_model`` evaluates ``split`` alone (it reads ``EVAL_SPLITS`` per call)."""
    import contextlib

    from pytest_algoperf import array_workload

    @contextlib.contextmanager
    def patched() -> Any:
        saved = array_workload.EVAL_SPLITS
        array_workload.EVAL_SPLITS = (split,)
        try:
            yield
        finally:
            array_workload.EVAL_SPLITS = saved

    return patched()


def profile_report(call: Callable[[], Any]) -> str:
    """pyinstrument's call tree of one call, as text (to find where time goes; its per-call overhead
    inflates Python-heavy code, so the seconds per part come from ``timed_parts``)."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001)
    profiler.start()
    call()
    profiler.stop()
    return profiler.output_text(unicode=False, color=False, show_all=False)


def timed_parts(workload: Any, call: Callable[[], Any]) -> dict[str, float]:
    """CPU seconds of one call by part, each exclusive of the parts it calls: every metric function of
    ``METRIC_FUNCTIONS`` (wherever a workload module calls it), host-to-device moves (``batch_to_device``),
    the forward passes (the rest of ``eval_batch``, which waits for the device), ``summarize_eval``'s own
    numpy, and what is left (``other``: slicing, the eval loop)."""
    totals: dict[str, float] = {}
    stack: list[list[float]] = []  # per active part: child seconds so far

    def wrap(function: Callable[..., Any], part: str) -> Callable[..., Any]:
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            stack.append([0.0])
            started = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.process_time() - started
                children = stack.pop()[0]
                totals[part] = totals.get(part, 0.0) + elapsed - children
                if stack:
                    stack[-1][0] += elapsed

        return timed_call

    patched: list[tuple[Any, str, Any]] = []
    for module in [m for name, m in sys.modules.items() if name.startswith("algoperf_workloads")]:
        for name, part in METRIC_FUNCTIONS.items():
            if callable(getattr(module, name, None)):
                patched.append((module, name, getattr(module, name)))
                setattr(module, name, wrap(getattr(module, name), part))
    for name, part in (("eval_batch", "forward"), ("batch_to_device", "transfer")):
        setattr(workload, name, wrap(getattr(workload, name), part))
    try:
        total, _ = timed(call)
    finally:
        for module, name, original in patched:
            setattr(module, name, original)
        for name in ("eval_batch", "batch_to_device"):
            delattr(workload, name)
    totals["other"] = total - sum(totals.values())
    return {key: round(value, 4) for key, value in sorted(totals.items())}


def measure_eval(workload_name: str, framework: str, folder: Path, repeats: int, profile: bool) -> dict:
    workload = create(workload_name, framework)
    data_seconds, _ = timed(lambda: [workload.split_arrays(s) for s in ("train", "validation", "test")])
    params, model_state = trained(workload, framework, folder)
    if framework == "pytorch":
        from pytest_algoperf.frameworks.pytorch_adapter import ADAPTER
    else:
        from pytest_algoperf.frameworks.jax_adapter import ADAPTER
    ADAPTER.activate("cpu")
    params, model_state = ADAPTER.prepare_model(params, model_state)
    params = ADAPTER.eval_params(params)

    def evaluate() -> dict[str, float]:
        return workload.eval_model(
            workload.eval_batch_size, params, model_state, make_rng(framework, 3), None, 100
        )

    first, metrics = timed(evaluate)
    seconds = [round(timed(evaluate)[0], 4) for _ in range(repeats)]
    wall = [round(wall_timed(evaluate)[0], 4) for _ in range(repeats)]
    splits = {}
    for split in ("train", "validation", "test"):
        with only_split(split):
            evaluate()  # a split's own shapes compile here, outside the timing
            splits[split] = round(min(timed(evaluate)[0] for _ in range(repeats)), 4)
    result = {
        "workload": workload_name,
        "framework": framework,
        "data_seconds": round(data_seconds, 3),
        "first_eval_seconds": round(first, 3),
        "eval_seconds": seconds,
        "eval_seconds_median": float(np.median(seconds)),
        "eval_wall_seconds": wall,
        "split_seconds": splits,
        "metrics": metrics,
    }
    result["parts"] = timed_parts(workload, evaluate)
    if profile:
        result["profile"] = profile_report(evaluate)
    return result


# ---- data generation and JAX compilation ---------------------------------------------------------------


def measure_data(workload_name: str) -> dict[str, Any]:
    """Seconds until every split's arrays are in memory, in this (fresh) process."""
    workload = create(workload_name, "pytorch")
    seconds, _ = timed(lambda: [workload.split_arrays(s) for s in ("train", "validation", "test")])
    return {"workload": workload_name, "data_seconds": round(seconds, 3)}


def measure_compile(workload_name: str, folder: Path | None) -> dict[str, Any]:
    """JAX: seconds of the first and second eval_model call and of the first and second AdamW steps."""
    from collections import namedtuple

    import jax

    from pytest_algoperf.frameworks.jax_adapter import ADAPTER
    from pytest_algoperf.submission import load_submission, resolve_submission

    ADAPTER.activate("cpu")
    workload = create(workload_name, "jax")
    [workload.split_arrays(s) for s in ("train", "validation", "test")]
    params, model_state = workload.init_model_fn(make_rng("jax", 0))
    params, model_state = ADAPTER.prepare_model(params, model_state)

    def evaluate() -> Any:
        return workload.eval_model(workload.eval_batch_size, params, model_state, make_rng("jax", 3), None, 0)

    eval_first, _ = wall_timed(evaluate)
    eval_second, _ = wall_timed(evaluate)
    hyper = namedtuple(
        "Hyperparameters",
        "learning_rate one_minus_beta1 beta2 weight_decay warmup_factor label_smoothing dropout_rate",
    )(0.002, 0.1, 0.999, 0.01, 0.05, 0.0, 0.0)
    submission = load_submission(resolve_submission("adamw", "jax", ROOT))
    optimizer_state = ADAPTER.prepare_optimizer_state(
        submission.module.init_optimizer_state(workload, params, model_state, hyper, make_rng("jax", 1))
    )
    batch_size = submission.get_batch_size(workload.name, workload.base_name)
    queue = workload.build_input_queue(make_rng("jax", 2), "train", None, batch_size)
    steps = []
    for step in range(2):
        batch = next(queue)

        def update(step: int = step, batch: Any = batch) -> Any:
            return submission.module.update_params(
                workload, params, workload.model_params_types, model_state, hyper, batch,
                workload.loss_type, optimizer_state, [], step, make_rng("jax", 10 + step),
            )  # fmt: skip

        seconds, _ = wall_timed(lambda update=update: jax.block_until_ready(update()))
        steps.append(round(seconds, 3))
    return {
        "workload": workload_name,
        "first_eval_seconds": round(eval_first, 3),
        "second_eval_seconds": round(eval_second, 3),
        "first_step_seconds": steps[0],
        "second_step_seconds": steps[1],
        "compilation_cache": jax.config.jax_compilation_cache_dir,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("command", choices=("train", "eval", "data", "compile"))
    parser.add_argument("--params", type=Path, default=Path(".algoperf-costs"))
    parser.add_argument("--workloads", nargs="*", default=list(BASE_WORKLOADS))
    parser.add_argument("--workload")
    parser.add_argument("--frameworks", nargs="*", default=["pytorch", "jax"])
    parser.add_argument("--framework", default="pytorch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    one_thread()
    if args.command == "train":
        for workload_name in args.workloads:
            for framework in args.frameworks:
                result = train(workload_name, framework, args.params)
                print(json.dumps({"workload": workload_name, "framework": framework, **result}), flush=True)
        return 0
    workload_name = args.workload or args.workloads[0]
    if args.command == "eval":
        result = measure_eval(workload_name, args.framework, args.params, args.repeats, args.profile)
    elif args.command == "data":
        result = measure_data(workload_name)
    else:
        result = measure_compile(workload_name, args.params)
    import pytest_algoperf

    print(json.dumps({**result, "code": str(Path(pytest_algoperf.__file__).parents[1])}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
