"""The self-check's table: one row per workload and framework, then the suite's serial / -n 2 line."""

from __future__ import annotations

from typing import Any

from pytest_algoperf.reporting.tables import Table, as_markdown


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def jax_over_pytorch(rows: list[dict[str, Any]], workload: str) -> float | None:
    steps = {
        row["framework"]: row["overhead"]["bare_step_sec"] for row in rows if row["workload"] == workload
    }
    return steps["jax"] / steps["pytorch"] if {"jax", "pytorch"} <= set(steps) else None


def selfcheck_table(document: dict[str, Any]) -> Table:
    rows = document["rows"]
    table = [
        [
            "workload",
            "framework",
            "bare step",
            "harness / bare [interval]",
            "data_selection share",
            "JAX / PyTorch",
            "evals x10 / default",
            "repeats: time CV",
            "same steps",
            "eval share of wall",
        ]
    ]
    for row in rows:
        overhead, repeats = row["overhead"], row.get("repeats")
        frequent = row.get("frequent_evals")
        table.append(
            [
                row["workload"],
                row["framework"],
                f"{overhead['bare_step_sec'] * 1e3:.2f} ms",
                f"{overhead['ratio']:.3f} [{overhead['low']:.3f}, {overhead['high']:.3f}]",
                f"{row['data_selection_share']:.1%}",
                _ratio(jax_over_pytorch(rows, row["workload"])) if row["framework"] == "jax" else "-",
                "-" if frequent is None else f"{frequent['ratio']:.3f} ({frequent['evals']} evals)",
                "-" if repeats is None or repeats["cv"] is None else f"{repeats['cv']:.1%}",
                "-" if repeats is None else ("yes" if repeats["same_steps"] else "no"),
                "-" if repeats is None else f"{repeats['eval_share']:.1%}",
            ]
        )
    return table


def suite_lines(document: dict[str, Any]) -> list[str]:
    lines = []
    for suite in document["suites"]:
        change = suite["largest_run_change"]
        lines.append(
            f"suite {', '.join(suite['workloads'])} ({suite['framework']}): serial "
            f"{suite['serial_sec']:.1f} s, -n 2 {suite['parallel_sec']:.1f} s, {suite['speedup']:.2f}x; "
            f"largest change of a run's time to target {'-' if change is None else f'{change:.1%}'}"
        )
    return lines


def print_table(document: dict[str, Any]) -> None:
    for line in [*as_markdown(selfcheck_table(document)), "", *suite_lines(document)]:
        print(line)
