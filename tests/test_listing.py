"""``pytest --algoperf-list``: every workload and variant with what a session would judge it by, and exit."""

from __future__ import annotations

import pytest
from tiny import QUIET_PLUGINS, conftest_source


def test_the_list_shows_each_workloads_targets_budget_schedule_and_suite_and_runs_nothing(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makeconftest(conftest_source())
    pytester.makepyfile(test_never="def test_never():\n    raise AssertionError('collected')\n")
    result = pytester.runpytest(*QUIET_PLUGINS, "--algoperf-list")
    assert result.ret == pytest.ExitCode.OK
    number, schedule = r"[\d.]+", r"\d+ / \d+"
    result.stdout.re_match_lines(
        [
            r"workload\s+variant of\s+metric\s+validation target\s+test target\s+budget\s+eval period\s+"
            r"step hint\s+step mode \(eval every / budget\)\s+hardware profile\s+default suite\s+frameworks",
            rf"mnist\s+-\s+accuracy \(>=\)\s+{number}\s+{number}\s+10 s\s+0.05 s\s+\d+\s+{schedule}"
            r"\s+\S+\s+yes",
            rf"ogbg_mini_gelu\s+ogbg_mini\s+mean_average_precision \(>=\)(\s+\S+){{7}}\s+{schedule}"
            r"\s+\S+\s+-",
            r"tiny\s+-\s+accuracy \(>=\)\s+0.9\s+0.85\s+5 s\s+0 s\s+200\s+1 / 200\s+-\s+yes\s+pytorch$",
        ]
    )
    assert "collected" not in result.stdout.str()
