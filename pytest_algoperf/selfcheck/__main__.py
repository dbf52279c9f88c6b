"""The self-check's command line: ``python -m pytest_algoperf.selfcheck --help``."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_algoperf.allocator import keep_freed_memory
from pytest_algoperf.registry import default_suite
from pytest_algoperf.threads import affinity, limit_xla_threads, set_affinity

BASE_WORKLOADS = default_suite()


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_algoperf.selfcheck",
        description="Measure the harness itself: overhead against a bare loop, data selection's share, JAX "
        "against PyTorch, evals leaking into the clock, same-seed repeats, and serial against -n 2.",
    )
    listing = lambda text: tuple(part for part in text.split(",") if part)  # noqa: E731
    parser.add_argument("--workloads", type=listing, default=BASE_WORKLOADS, help="comma list")
    parser.add_argument("--frameworks", type=listing, default=("pytorch", "jax"), help="comma list")
    parser.add_argument("--submission", default="adamw", help="a built-in name, a folder or a .py file")
    parser.add_argument("--block-sec", type=float, default=0.5, help="seconds of each overhead block")
    parser.add_argument("--pairs", type=int, default=4, help="bare/harness block pairs (ABBA)")
    parser.add_argument("--repeats", type=int, default=5, help="same-seed runs to target per workload")
    parser.add_argument("--repeat-workloads", type=listing, default=("mnist", "criteo1tb_mini"))
    parser.add_argument("--schedule", choices=("steps", "time"), default="steps", help="of the repeats")
    parser.add_argument(
        "--suite-workloads", type=listing, default=("mnist", "criteo1tb_mini", "ogbg_mini"), help="for -n 2"
    )
    parser.add_argument("--skip", type=listing, default=(), help="any of: evals, repeats, suite")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="time the overhead blocks on one CPU, as the budgets were calibrated (default)",
    )
    parser.add_argument("--output", type=Path, default=Path("selfcheck.json"))
    return parser.parse_args(argv)


@contextlib.contextmanager
def each_jax_function_compiled_once(frameworks: tuple[str, ...]) -> Iterator[None]:
    """Inside, a process-wide persistent compilation cache in a temporary folder: every measurement builds
    fresh states, and the JAX ones would otherwise compile the same step again each time (minutes of a run,
    none of them measured: blocks and per-step times leave the first step out). The repeats' first steps
    load instead of compiling. JAX's settings are put back after."""
    if "jax" not in frameworks:
        yield
        return
    import jax

    from pytest_algoperf.frameworks.jax_compilation_cache import CompilationCacheWarning, cache_reset

    folder, minimum = (
        jax.config.jax_compilation_cache_dir,
        jax.config.jax_persistent_cache_min_compile_time_secs,
    )
    with tempfile.TemporaryDirectory(prefix="algoperf-selfcheck-xla-") as scratch, warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=CompilationCacheWarning)
        jax.config.update("jax_compilation_cache_dir", scratch)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        try:
            yield
        finally:
            jax.config.update("jax_compilation_cache_dir", folder)
            jax.config.update("jax_persistent_cache_min_compile_time_secs", minimum)
            if (reset := cache_reset()) is not None:  # JAX reads its cache settings once otherwise
                reset()


@contextlib.contextmanager
def one_cpu(pin: bool) -> Iterator[int | None]:
    """Inside, every thread of this process keeps to the first CPU it may use (the CPU, or None when not
    pinned); after it, every CPU again. On one core, as the budgets were calibrated: else a JAX run overlaps
    its Python dispatch with XLA's execution on a second core, and both sides of every ratio swing with
    whatever else the machine schedules there."""
    allowed = affinity() if pin else None
    if not allowed:
        yield None
        return
    set_affinity({min(allowed)})
    try:
        yield min(allowed)
    finally:
        set_affinity(allowed)


def measure_rows(args: argparse.Namespace) -> tuple[list[dict[str, Any]], int | None]:
    """The in-process measures, one row per workload and framework; and the CPU the per-step ratios were
    measured on. Whole runs (evals, repeats) use every CPU, as a user's session does."""
    from pytest_algoperf.selfcheck import measures, repeats
    from pytest_algoperf.selfcheck.setup import make_bench

    rows: list[dict[str, Any]] = []
    measured_on = None  # the CPU of the overhead blocks
    for workload in args.workloads:
        for framework in args.frameworks:
            say(f"{workload} ({framework}): overhead")
            bench = make_bench(workload, framework, args.submission)
            row: dict[str, Any] = {"workload": workload, "framework": framework}
            with one_cpu(args.pin) as cpu:
                overhead = measures.overhead(bench, args.block_sec, args.pairs)
                share = measures.data_selection_share(bench, overhead.steps, overhead.bare_step_sec)
            measured_on = cpu
            row["overhead"] = asdict(overhead)
            row["data_selection_share"] = share
            if "evals" not in args.skip:
                say(f"{workload} ({framework}): evals ten times as often")
                ratio, evals = measures.frequent_evals(bench)
                row["frequent_evals"] = {"ratio": ratio, "evals": evals}
            if "repeats" not in args.skip and workload in args.repeat_workloads:
                say(f"{workload} ({framework}): {args.repeats} same-seed repeats to the target")
                found = repeats.repeats(bench, args.repeats, args.schedule)
                row["repeats"] = {**asdict(found), "cv": found.cv, "same_steps": found.same_steps}
            rows.append(row)
    return rows, measured_on


def say(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    limit_xla_threads(1)  # the budgets' calibration used one thread; set before JAX's backend starts
    keep_freed_memory()  # as sessions and calibrations do
    from pytest_algoperf.reporting.environment import machine_info, software_info
    from pytest_algoperf.selfcheck import suite
    from pytest_algoperf.selfcheck.report import print_table

    started = time.perf_counter()
    with each_jax_function_compiled_once(args.frameworks):
        rows, cpu = measure_rows(args)
    suites = []
    if "suite" not in args.skip:
        for framework in args.frameworks:
            say(f"suite {','.join(args.suite_workloads)} ({framework}): serial, then -n 2")
            found = suite.suite_times(args.suite_workloads, framework, args.submission)
            suites.append({**asdict(found), "speedup": found.speedup})
    document = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "software": software_info(),
        "arguments": {k: list(v) if isinstance(v, tuple) else str(v) for k, v in vars(args).items()},
        "measured_on_cpu": cpu,  # the overhead blocks' one CPU; None: not pinned
        "jax_compilation": "each function compiles once per self-check (a persistent cache in a temp folder)",
        "rows": rows,
        "suites": suites,
        "seconds": time.perf_counter() - started,
    }
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print_table(document)
    say(f"written to {args.output} in {document['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
