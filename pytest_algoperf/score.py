"""Score saved results outside pytest: ``python -m pytest_algoperf.score RESULTS...``.

Each argument is a ``results.json`` of ours, an AlgoPerf experiment folder of one submission
(``study_*/<workload>_<framework>/trial_*/eval_measurements.csv``, named after the folder), or a folder of
such folders (for example ``.algoperf/experiments``). Prints workload times and, with two or more
submissions, the benchmark scores; ``--report DIR`` also writes report.md and the PNG figures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pytest_algoperf.aggregate import scoreboards, workload_times
from pytest_algoperf.algoperf_logs import (
    ResultsFileError,
    Target,
    load_experiment_folder,
    load_results_file,
    load_targets_file,
)
from pytest_algoperf.reporting.tables import as_text, scores_table, workload_times_table
from pytest_algoperf.results import RunResult


def load(paths: list[Path], targets: dict[str, Target]) -> list[RunResult]:
    results: list[RunResult] = []
    for path in paths:
        if path.is_file():
            results += load_results_file(path)
        elif any(path.glob("study_*")):
            results += load_experiment_folder(path, targets=targets)
        elif path.is_dir() and any(path.glob("*/study_*")):
            for folder in sorted(p for p in path.iterdir() if any(p.glob("study_*"))):
                results += load_experiment_folder(folder, targets=targets)
        else:
            raise ResultsFileError(f"{path}: neither a results.json nor a folder with study_* subfolders")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_algoperf.score", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "results", nargs="+", type=Path, help="results.json files or AlgoPerf experiment folders"
    )
    parser.add_argument(
        "--reference", help="score relative to this submission instead of the best per workload"
    )
    parser.add_argument(
        "--variant-scoring",
        choices=("v0.6", "v0.5"),
        default="v0.6",
        help="v0.6: variants are not scored; v0.5: couple each variant with its base workload "
        "(variants are known from our results files' base_workload)",
    )
    parser.add_argument("--targets", type=Path, help="JSON file of targets for workloads we do not know")
    parser.add_argument("--report", type=Path, help="folder to write report.md and the figures into")
    args = parser.parse_args(argv)
    try:
        results = load(args.results, load_targets_file(args.targets) if args.targets else {})
        boards = scoreboards(results, args.reference, couple_variants=args.variant_scoring == "v0.5")
    except (ResultsFileError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    times = workload_times(results)
    print("\n".join(as_text(workload_times_table(times))))
    for board in boards:
        print(f"\nscores ({board.framework})")
        print("\n".join(as_text(scores_table(board))))
    if args.report:
        from pytest_algoperf.reporting.markdown import render_report, write_report
        from pytest_algoperf.reporting.plots import plot_learning_curves, plot_performance_profile

        figures = [
            plot_performance_profile(b, args.report / f"performance_profile_{b.framework}.png")
            for b in boards
        ]
        figures += plot_learning_curves(results, args.report / "curves")
        document = {"session": {"seed": "-"}, "machine": {}, "commit": None}
        write_report(
            args.report / "report.md",
            render_report(document, results, times, boards, {}, figures, args.report),
        )
        print(f"\nreport: {args.report / 'report.md'}")
    if not boards:
        print("\n(one submission per framework: no scores; give two or more to compare)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
