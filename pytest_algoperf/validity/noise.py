"""How noisy each workload's evaluation is and how hard its target, from what calibration recorded:
``python -m pytest_algoperf.validity.noise``.

Per base workload and framework: the validation set's size and, for accuracy-like metrics, the share one
example moves the metric; the calibration reruns' best validation values (seeds, the tuned default) as
their median and standard deviation; and where the target sits, in those standard deviations from the
median (negative: easier than the median seed, the side a lower-is-better metric's sign is turned to).
AlgoPerf's procedure puts the validation target at the median, 0 here (ALGOPERF.md section 7).

    python -m pytest_algoperf.validity.noise [WORKLOAD ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from typing import Any

from pytest_algoperf.calibration import read_calibration_file
from pytest_algoperf.registry import builtin_entries, default_suite

PER_EXAMPLE_METRICS = ("accuracy",)  # a metric that one example moves by 1/n


def noise_rows(workloads: Sequence[str]) -> list[dict[str, Any]]:
    entries = {entry.name: entry for entry in builtin_entries()}
    rows = []
    for name in workloads:
        workload = entries[name].create("pytorch", None, "cpu")
        calibration = read_calibration_file(workload.calibration_file)[workload.calibration_entry]
        target = calibration["validation_target"]
        sign = 1.0 if workload.target_metric_higher_is_better else -1.0
        reruns: dict[str, list[float]] = {}
        for rerun in calibration.get("measured", {}).get("reruns", []):
            reruns.setdefault(rerun["framework"], []).append(rerun["best_validation"])
        for framework, values in reruns.items():
            median, spread = statistics.median(values), statistics.pstdev(values)
            rows.append(
                {
                    "workload": name,
                    "framework": framework,
                    "metric": workload.target_metric_name,
                    "validation_examples": workload.num_validation_examples,
                    "one_example": 1 / workload.num_validation_examples
                    if workload.target_metric_name in PER_EXAMPLE_METRICS
                    else None,
                    "seeds": len(values),
                    "median": median,
                    "std": spread,
                    "target": target,
                    "target_in_std": sign * (target - median) / spread if spread else None,
                }
            )
    return rows


def render(rows: list[dict[str, Any]]) -> list[str]:
    head = (
        f"{'workload':<28} {'framework':<9} {'metric':<22} {'val. n':>6} {'1 example':>9} {'seeds':>5} "
        f"{'median':>9} {'std':>8} {'target':>9} {'target - median':>15}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        one = "-" if r["one_example"] is None else f"{r['one_example']:.2%}"
        shift = "-" if r["target_in_std"] is None else f"{r['target_in_std']:+.1f} std"
        lines.append(
            f"{r['workload']:<28} {r['framework']:<9} {r['metric']:<22} {r['validation_examples']:>6} "
            f"{one:>9} {r['seeds']:>5} {r['median']:>9.4f} {r['std']:>8.4f} {r['target']:>9.4f} {shift:>15}"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_algoperf.validity.noise", description=__doc__)
    parser.add_argument("workloads", nargs="*", help="base workloads (default: the default suite)")
    args = parser.parse_args(argv)
    known = {entry.name for entry in builtin_entries()}
    unknown = [name for name in args.workloads if name not in known]
    if unknown:
        parser.error(f"unknown workload {', '.join(unknown)}; built-in ones: {', '.join(sorted(known))}")
    print("\n".join(render(noise_rows(args.workloads or list(default_suite())))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
