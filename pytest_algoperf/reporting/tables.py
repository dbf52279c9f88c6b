"""The report's tables as rows of strings, rendered alike in the terminal and in Markdown."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from pytest_algoperf.gate.verdicts import Verdict
from pytest_algoperf.load import LoadReport
from pytest_algoperf.results import RunResult
from pytest_algoperf.score.boards import Scoreboard, TimesByFramework

Table = list[list[str]]  # the first row is the header


def seconds(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.2f}s"


def reached(result: RunResult) -> str:
    if result.stop_reason in ("error", "crashed", "interrupted", "diverged", "refused"):
        return result.stop_reason
    if result.met_target and not result.reached:
        return "over time budget"
    return "yes" if result.reached else "no"


def load_mark(result: RunResult) -> str:
    """How many CPUs other processes kept busy while the run trained; ``contended`` marks a suspect time."""
    report = LoadReport.from_json(result.load)
    if report is None or report.other_cpus is None:
        return "-"
    return f"{report.other_cpus:.2f} CPUs" + (" contended" if report.contended else "")


def runs_table(results: Sequence[RunResult], verdicts: Mapping[str, Verdict]) -> Table:
    """One row per run, with the regression gate's verdict when a baseline was given."""
    header = [
        "submission",
        "framework",
        "workload",
        "reached",
        "time to target",
        "steps to target",
        "evals",
        "eval time",
        "others' load",
    ]
    if any(r.study or r.trial for r in results):
        header[3:3] = ["study", "trial"]
    table = [header + (["vs baseline"] if verdicts else [])]
    for r in results:
        row = [
            r.submission,
            r.framework,
            r.workload,
            reached(r),
            seconds(r.time_to_target),
            "-" if r.steps_to_target is None else str(r.steps_to_target),
            str(r.num_evals),
            seconds(r.eval_time),
            load_mark(r),
        ]
        if "study" in header:
            row[3:3] = [str(r.study), str(r.trial)]
        if verdicts:
            verdict = verdicts.get(r.test_id)
            row.append("-" if verdict is None else verdict.status)
        table.append(row)
    return table


def gate_table(verdicts: Iterable[Verdict]) -> Table:
    """The regression gate, a row per run and measure: baseline, now, ratio, interval, threshold, verdict."""
    table = [["run", "measure", "baseline", "now", "ratio", "interval", "threshold", "verdict"]]
    for verdict in verdicts:
        if not verdict.comparisons:
            table.append(
                [verdict.result.test_id, "-", "-", "-", "-", "-", "-", f"{verdict.status}: {verdict.detail}"]
            )
        for c in verdict.comparisons:
            ratio = "-" if c.ratio is None else f"{c.ratio:.3f}"
            row = [
                verdict.result.test_id,
                c.measure,
                c.baseline,
                c.now,
                ratio,
                c.interval,
                c.threshold,
                c.status,
            ]
            table.append(row)
    return table


def workload_times_table(times: TimesByFramework) -> Table:
    """Per framework and submission, each workload's time: median over studies of the fastest trial."""
    workloads = sorted({w for subs in times.values() for row in subs.values() for w in row})
    table = [["framework", "submission", *workloads]]
    for framework, subs in times.items():
        for submission, row in subs.items():
            table.append([framework, submission, *(seconds(row.get(w)) for w in workloads)])
    return table


def scores_table(board: Scoreboard) -> Table:
    """Benchmark score and geometric-mean speedup over the reference, then per-workload ratios."""
    workloads = sorted(next(iter(board.ratios.values())))
    table = [["submission", "score", f"speedup vs {board.reference}", *(f"{w} ratio" for w in workloads)]]
    for submission, score in sorted(board.scores.items(), key=lambda item: -item[1]):
        ratios = board.ratios[submission]
        table.append(
            [
                submission,
                f"{score:.3f}",
                f"{board.speedups[submission]:.2f}x",
                *("inf" if math.isinf(ratios[w]) else f"{ratios[w]:.2f}" for w in workloads),
            ]
        )
    return table


def as_text(table: Table) -> list[str]:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def as_markdown(table: Table) -> list[str]:
    lines = ["| " + " | ".join(row) + " |" for row in table]
    lines.insert(1, "|" + "---|" * len(table[0]))
    return lines
