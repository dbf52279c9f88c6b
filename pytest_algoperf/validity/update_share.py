"""The optimizer update's share of a training step, per workload.

    python -m pytest_algoperf.validity.update_share --submissions nadamw,soap --framework pytorch

A step of a submission is its forward and backward pass plus its update; the ``gradient_only`` submission
takes the same steps with an optimizer that changes nothing. Blocks of each (the submission's own calls, one
synchronisation at the end, as the self-check's bare blocks) alternate ``--repeats`` times on one CPU and
the medians give ``share = 1 - gradient_only / submission``. Every submission runs at its tuned default
with dropout off, so the forward and backward passes are the same ones; one without the framework is left
out of that framework's rows. AlgoPerf's batches, hundreds to a quarter million examples on GPUs, make the
update a small share of a step; a mini workload whose batch makes it a large one ranks cheap optimizers
above expensive ones for a reason AlgoPerf does not have (VALIDITY.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from pytest_algoperf.allocator import keep_freed_memory
from pytest_algoperf.calibration_progress import say
from pytest_algoperf.registry import default_suite
from pytest_algoperf.score.tuning import as_hyperparameters
from pytest_algoperf.selfcheck.__main__ import each_jax_function_compiled_once, one_cpu
from pytest_algoperf.selfcheck.measures import bare_block
from pytest_algoperf.selfcheck.setup import make_bench
from pytest_algoperf.submission import SubmissionError, resolve_submission

GRADIENT_ONLY = str(Path(__file__).with_name("gradient_only"))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pytest_algoperf.validity.update_share", description=__doc__)
    p.add_argument("--submissions", default="nadamw,soap", help="comma list (default: nadamw,soap)")
    p.add_argument("--framework", default="pytorch", help="comma list (default: pytorch)")
    p.add_argument("--workloads", default="", help="comma list (default: the base suite)")
    p.add_argument("--block-sec", type=float, default=0.5, help="seconds of steps a block (default: 0.5)")
    p.add_argument("--repeats", type=int, default=5, help="blocks of each submission (default: 5)")
    p.add_argument("--output", type=Path, default=None, help="a JSON file for the rows")
    return p


def measure(workload: str, framework: str, submissions: list[str], block_sec: float, repeats: int) -> dict:
    """Median seconds a step of each submission and of ``gradient_only``, and each submission's share."""
    benches = {name: make_bench(workload, framework, spec) for name, spec in _specs(submissions).items()}
    for bench in benches.values():
        point = bench.settings.hyperparameters._asdict() | {"dropout_rate": 0.0}
        bench.settings = bench.with_settings(hyperparameters=as_hyperparameters(point))
    probe = bare_block(benches["gradient_only"], 3)
    steps = max(3, round(block_sec / max(probe, 1e-6)))
    times: dict[str, list[float]] = {name: [] for name in benches}
    for _ in range(repeats):  # interleaved, so the machine's drift falls on every submission alike
        for name, bench in benches.items():
            times[name].append(bare_block(bench, steps))
    step = {name: statistics.median(values) for name, values in times.items()}
    gradient = step["gradient_only"]
    return {
        "workload": workload,
        "framework": framework,
        "steps_a_block": steps,
        "step_sec": step,
        "share": {name: 1.0 - gradient / step[name] for name in submissions},
        "spread": {
            name: (min(v) / statistics.median(v), max(v) / statistics.median(v)) for name, v in times.items()
        },
    }


def _implemented(submission: str, framework: str) -> bool:
    try:
        resolve_submission(submission, framework, Path.cwd())
    except SubmissionError:
        return False
    return True


def _specs(submissions: list[str]) -> dict[str, str]:
    return {"gradient_only": GRADIENT_ONLY, **{name: name for name in submissions}}


def render(rows: list[dict], submissions: list[str]) -> list[str]:
    head = f"{'workload':<28} {'framework':<9} {'fwd+bwd ms':>10}"
    for name in submissions:
        head += f" {name + ' ms':>14} {'share':>6}"
    lines = [head, "-" * len(head)]
    for row in rows:
        line = f"{row['workload']:<28} {row['framework']:<9} {row['step_sec']['gradient_only'] * 1e3:>10.2f}"
        for name in submissions:
            if name in row["share"]:
                line += f" {row['step_sec'][name] * 1e3:>14.2f} {row['share'][name]:>6.1%}"
            else:
                line += f" {'-':>14} {'-':>6}"
        lines.append(line)
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    keep_freed_memory()  # steps timed as sessions time them
    submissions = [s for s in args.submissions.split(",") if s]
    frameworks = tuple(f for f in args.framework.split(",") if f)
    workloads = [w for w in args.workloads.split(",") if w] or list(default_suite())
    rows = []
    with each_jax_function_compiled_once(frameworks), one_cpu(pin=True) as cpu:
        for workload in workloads:
            for framework in frameworks:
                say(f"{workload} ({framework})")
                available = [s for s in submissions if _implemented(s, framework)]
                rows.append(measure(workload, framework, available, args.block_sec, args.repeats))
    print("\n".join(render(rows, submissions)))
    if args.output:
        document = {
            "command": " ".join(["python -m pytest_algoperf.validity.update_share", *(argv or sys.argv[1:])]),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "cpu": cpu,
            "rows": rows,
        }
        args.output.write_text(json.dumps(document, indent=2) + "\n")
        print(f"saved: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
