"""Score saved results outside pytest: ``python -m pytest_algoperf.score RESULTS...``.

Each argument is a ``results.json`` of ours, an experiment folder of one submission
(``study_*/<workload>_<framework>/trial_*/eval_measurements.csv``, named after the folder), or any folder
above such folders, for example AlgoPerf's ``logs/algoperf_scoring_v05`` with its ``external_tuning/`` and
``self_tuning/`` trees. AlgoPerf's logs are scored as AlgoPerf scored them under ``--rules``; our own
results as the session that wrote them did. ``--report DIR`` also writes report.md, CSV files and figures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pytest_algoperf.reporting.leaderboard import print_boards, write_leaderboard_report
from pytest_algoperf.reporting.tables import as_text, scores_table, workload_times_table
from pytest_algoperf.score.boards import AlgoPerfRules, leaderboards, scoreboards
from pytest_algoperf.score.logs import ALGOPERF, OURS, LoadedRuns, ResultsFileError, load, load_held_out_file
from pytest_algoperf.score.logs import load_targets_file as load_targets_file
from pytest_algoperf.score.trials import BEST_TRIAL_RULES, workload_times
from pytest_algoperf.score.versions import VERSIONS, AlgoPerfVersion


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pytest_algoperf.score", description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", type=Path, help="results.json files or experiment folders")
    p.add_argument(
        "--rules",
        choices=sorted(VERSIONS),
        default="v0.6",
        help="the AlgoPerf version whose targets, variants and budgets apply to AlgoPerf's logs "
        "(default v0.6)",
    )
    p.add_argument(
        "--variant-scoring",
        choices=("v0.6", "v0.5"),
        help="v0.6: variants are not scored; v0.5: a missed held-out variant makes its base workload's time "
        "inf (default: the --rules version's)",
    )
    p.add_argument(
        "--held-out",
        type=Path,
        help="JSON list of the held-out variants that count under --variant-scoring v0.5 "
        "(default: the version's draw; v0.5: criteo1tb_embed_init, fastmri_tanh, ...)",
    )
    p.add_argument(
        "--best-trial",
        choices=BEST_TRIAL_RULES,
        help="a study's time: its trial that met the target at the fewest evals (AlgoPerf's code, the "
        "default for AlgoPerf's logs) or in the least time (AlgoPerf's documentation, the default for our "
        "results)",
    )
    p.add_argument(
        "--boards",
        choices=("one", "per-framework"),
        help="AlgoPerf's logs: one board across JAX and PyTorch (default, as AlgoPerf) or one per framework",
    )
    p.add_argument("--ruleset", choices=("external", "self"), help="score only this ruleset's logs")
    p.add_argument("--reference", help="score relative to this submission instead of the best per workload")
    p.add_argument("--targets", type=Path, help="JSON file of targets for workloads we do not know")
    p.add_argument("--report", type=Path, help="folder to write report.md, CSV files and the figures into")
    return p


def _version(args: argparse.Namespace) -> AlgoPerfVersion:
    version = VERSIONS[args.rules]
    variant_scoring = args.variant_scoring or args.rules
    if args.held_out is not None:
        return version.with_held_out(load_held_out_file(args.held_out))
    if variant_scoring == "v0.6":
        return version.with_held_out(())
    return version if version.held_out else version.with_held_out(VERSIONS["v0.5"].held_out)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        version = _version(args)
        targets = load_targets_file(args.targets) if args.targets else None
        loaded = load(args.results, version, targets)
        if args.ruleset:
            loaded.runs = {r: runs for r, runs in loaded.runs.items() if r == args.ruleset}
            if not loaded.runs:
                raise ResultsFileError(
                    f"no {args.ruleset}-tuning runs in {', '.join(map(str, args.results))}"
                )
        if ALGOPERF in loaded.origins:
            return _score_algoperf_logs(args, version, loaded)
        return _score_our_results(args, loaded)
    except (ResultsFileError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _score_algoperf_logs(args: argparse.Namespace, version: AlgoPerfVersion, loaded: LoadedRuns) -> int:
    if OURS in loaded.origins:
        raise ResultsFileError(
            "these inputs mix AlgoPerf's logs with pytest-algoperf results; score them in separate commands"
        )
    rules = AlgoPerfRules(
        version=version,
        best_trial=args.best_trial or "fewest-evals",
        one_board=(args.boards or "one") == "one",
        reference=args.reference,
    )
    boards = leaderboards(loaded.runs, rules)
    print("\n".join(print_boards(boards, rules, loaded)))
    if args.report:
        path = write_leaderboard_report(args.report, boards, rules, loaded)
        print(f"\nreport: {path}")
    return 0


def _score_our_results(args: argparse.Namespace, loaded: LoadedRuns) -> int:
    results = loaded.all_runs
    rule = args.best_trial or "fastest"
    if args.boards == "one":
        print("note: --boards one applies to AlgoPerf's logs; our results are scored per framework")
    couple = (args.variant_scoring or "v0.6") == "v0.5"
    boards = scoreboards(results, args.reference, couple_variants=couple, rule=rule)
    times = workload_times(results, rule)
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
