"""The ``--algoperf-*`` options: ini mirrors, precedence, validation, and what a session collects."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tiny import ONE_THREAD, QUIET_PLUGINS, assert_usage_error, write_tiny_project

from pytest_algoperf.options import OPTIONS, OptionSpec, raw_value

OPTION_IDS = [option.flag for option in OPTIONS]


def expected(option: OptionSpec, text: str) -> Any:
    """What ``raw_value`` gives for ``text``: repeatable options collect a list."""
    return [text] if option.repeatable else text


def on_the_command_line(option: OptionSpec, text: str) -> tuple[str, Any]:
    """The argument setting ``option`` to ``text``, and the value it gives: a flag takes none, and is True."""
    return (option.flag, True) if option.is_flag else (f"{option.flag}={text}", expected(option, text))


@pytest.mark.parametrize("option", OPTIONS, ids=OPTION_IDS)
def test_every_flag_has_an_ini_mirror_named_after_it(pytester: pytest.Pytester, option: OptionSpec) -> None:
    assert option.flag.startswith("--algoperf-")
    assert option.dest == "algoperf_" + option.flag.removeprefix("--algoperf-").replace("-", "_")
    pytester.makeini(f"[pytest]\n{option.dest} = from-ini\n")
    assert raw_value(pytester.parseconfig(), option) == expected(option, "from-ini")


@pytest.mark.parametrize("option", OPTIONS, ids=OPTION_IDS)
def test_the_command_line_beats_the_ini_file_which_beats_the_default(
    pytester: pytest.Pytester, option: OptionSpec
) -> None:
    assert raw_value(pytester.parseconfig(), option) == option.default
    pytester.makeini(f"[pytest]\n{option.dest} = from-ini\n")
    argument, value = on_the_command_line(option, "from-cli")
    assert raw_value(pytester.parseconfig(argument), option) == value


def test_help_lists_every_flag_and_its_ini_key(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*QUIET_PLUGINS, "--help")
    for option in OPTIONS:
        result.stdout.fnmatch_lines([f"*{option.flag}*", f"*{option.dest} (*"])


@pytest.mark.parametrize(
    ("ini", "cli", "seed"),
    [("", (), 0), ("algoperf_seed = 7", (), 7), ("algoperf_seed = 7", ("--algoperf-seed=3",), 3)],
    ids=["default", "ini", "cli-beats-ini"],
)
def test_the_report_header_shows_the_seed_by_precedence(
    pytester: pytest.Pytester, ini: str, cli: tuple[str, ...], seed: int
) -> None:
    write_tiny_project(pytester, ini=ini)
    result = pytester.runpytest(
        *QUIET_PLUGINS, "--algoperf-submission=tinysgd", "--algoperf-workloads=tiny", "--collect-only", *cli
    )
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines([f"algoperf: seed {seed}; submissions tinysgd; pytorch on cpu*"])


def test_the_output_folder_from_the_ini_file_is_relative_to_rootdir_and_holds_the_results(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run from a subfolder: the submission path is relative to where pytest runs, the output folder to
    rootdir (where the ini file is), like pytest's own cache folder."""
    write_tiny_project(pytester, ini="algoperf_output = from_ini\nalgoperf_seed = 5")
    monkeypatch.chdir(pytester.mkdir("sub"))
    result = pytester.runpytest(
        *QUIET_PLUGINS, ONE_THREAD, "--algoperf-submission=../tinysgd", "--algoperf-workloads=tiny"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"algoperf:*results in {pytester.path / 'from_ini'}"])
    assert (pytester.path / "from_ini" / "results.json").is_file()
    assert '"seed": 5' in (pytester.path / "from_ini" / "results.json").read_text()


@pytest.mark.parametrize(
    ("argument", "flag"),
    [
        ("--algoperf-framework=tensorflow", "--algoperf-framework"),
        ("--algoperf-framework=pytorch,tensorflow", "--algoperf-framework"),
        ("--algoperf-device=tpu", "--algoperf-device"),
        ("--algoperf-seed=-1", "--algoperf-seed"),
        ("--algoperf-seed=one", "--algoperf-seed"),
        ("--algoperf-tolerance=abc", "--algoperf-tolerance"),
        ("--algoperf-tolerance=-0.5", "--algoperf-tolerance"),
        ("--algoperf-eval-every-steps=0", "--algoperf-eval-every-steps"),
        ("--algoperf-workloads=mnist,no_such_workload", "--algoperf-workloads"),
        ("--algoperf-variant-scoring=v0.4", "--algoperf-variant-scoring"),
        ("--algoperf-max-global-steps=0", "--algoperf-max-global-steps"),
        ("--algoperf-max-global-steps=stephint", "--algoperf-max-global-steps"),
    ],
)
def test_a_bad_value_is_a_usage_error_naming_the_flag(
    pytester: pytest.Pytester, argument: str, flag: str
) -> None:
    result = pytester.runpytest(*QUIET_PLUGINS, "--algoperf-submission=adamw", argument)
    error = assert_usage_error(result, flag)
    assert argument.split("=")[1].split(",")[-1] in error


def test_a_bad_value_in_the_ini_file_is_a_usage_error_naming_the_flag(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nalgoperf_device = tpu\n")
    assert_usage_error(pytester.runpytest(*QUIET_PLUGINS), "--algoperf-device", "'tpu'", "auto, cpu, cuda")


def test_an_unknown_workload_error_lists_the_known_ones(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*QUIET_PLUGINS, "--algoperf-submission=adamw", "--algoperf-workloads=nope")
    assert_usage_error(result, "unknown workload nope", "known: ", "mnist")


def test_a_plain_pytest_collects_the_projects_own_tests_and_no_benchmark(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_own="def test_own_behaviour():\n    assert True\n")
    result = pytester.runpytest(*QUIET_PLUGINS, "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_own.py::test_own_behaviour PASSED*"])
    assert not [line for line in result.stdout.lines if line.startswith("algoperf") or "algoperf::" in line]
    assert "algoperf summary" not in result.stdout.str()


def test_with_a_submission_test_files_are_not_collected(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_own="def test_own_behaviour():\n    assert False\n")
    result = pytester.runpytest(
        *QUIET_PLUGINS, "--algoperf-submission=adamw", "--algoperf-workloads=mnist", "--collect-only", "-q"
    )
    assert result.ret == pytest.ExitCode.OK
    assert [line for line in result.stdout.lines if "::" in line] == ["algoperf::adamw-pytorch-mnist"]
    assert "test_own" not in result.stdout.str()


def test_benchmark_ids_are_submission_framework_workload_and_k_selects_among_them(
    pytester: pytest.Pytester,
) -> None:
    write_tiny_project(pytester)
    args = (
        *QUIET_PLUGINS,
        "--algoperf-submission=adamw",
        "--algoperf-submission=tinysgd",
        "--algoperf-workloads=mnist,tiny",
        "--collect-only",
        "-q",
    )
    collected = pytester.runpytest(*args)
    assert [line for line in collected.stdout.lines if "::" in line] == [
        "algoperf::adamw-pytorch-mnist",
        "algoperf::adamw-pytorch-tiny",
        "algoperf::tinysgd-pytorch-mnist",
        "algoperf::tinysgd-pytorch-tiny",
    ]
    selected = pytester.runpytest(*args, "-k", "tinysgd and mnist")
    assert [line for line in selected.stdout.lines if "::" in line] == ["algoperf::tinysgd-pytorch-mnist"]
    by_marker = pytester.runpytest(*args, "-m", "algoperf", "-k", "tiny and not tinysgd")
    assert [line for line in by_marker.stdout.lines if "::" in line] == ["algoperf::adamw-pytorch-tiny"]


@pytest.mark.parametrize(
    "arguments",
    [
        ("--algoperf-workloads=tiny,tiny",),
        ("--algoperf-workloads=tiny", "--algoperf-framework=pytorch,pytorch"),
        ("--algoperf-workloads=tiny", "--algoperf-submission=tinysgd"),
    ],
    ids=["workload", "framework", "submission"],
)
def test_a_repeated_name_does_not_collect_duplicate_test_ids(
    pytester: pytest.Pytester, arguments: tuple[str, ...]
) -> None:
    write_tiny_project(pytester)
    result = pytester.runpytest(
        *QUIET_PLUGINS, "--algoperf-submission=tinysgd", *arguments, "--collect-only", "-q"
    )
    ids = [line for line in result.stdout.lines if "::" in line]
    assert len(ids) == len(set(ids))


def test_a_baseline_path_in_the_ini_file_is_relative_to_rootdir(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tiny_project(pytester, ini="algoperf_baseline = baseline.json")
    document = {"format": "pytest-algoperf-baseline", "version": 1, "entries": {}}
    (pytester.path / "baseline.json").write_text(json.dumps(document))
    monkeypatch.chdir(pytester.mkdir("sub"))
    result = pytester.runpytest(
        *QUIET_PLUGINS, ONE_THREAD, "--algoperf-submission=../tinysgd", "--algoperf-workloads=tiny"
    )
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["new: tinysgd-pytorch-tiny has no baseline entry"])
