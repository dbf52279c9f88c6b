"""Command-line options and their ini mirrors, resolved once into ``Settings``.

Precedence: a command-line flag beats the ini setting (``pytest.ini``, ``[tool.pytest.ini_options]``...),
which beats the built-in default. Each flag ``--algoperf-x-y`` has the ini key ``algoperf_x_y``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_algoperf.frameworks import FRAMEWORKS
from pytest_algoperf.submission import default_frameworks
from pytest_algoperf.tuning import RULESETS

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class OptionSpec:
    flag: str
    help: str
    default: Any = None
    ini_type: str = "string"
    repeatable: bool = False

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


OPTIONS = [
    OptionSpec(
        "--algoperf-submission",
        "submission to benchmark: a built-in name (adamw), a folder or a .py file; "
        "repeatable. Without it, no benchmark test is collected.",
        ini_type="args",
        repeatable=True,
    ),
    OptionSpec(
        "--algoperf-framework",
        "pytorch or jax, or a comma list of both (default: the one the submission files are written for, "
        "else pytorch)",
        "",
    ),
    OptionSpec("--algoperf-workloads", "comma list of workloads (default: every base workload)", ""),
    OptionSpec(
        "--algoperf-variants",
        "workload variants to run besides their base workloads: none (default), all, held-out (one per "
        "workload, drawn from the session seed) or a comma list of variant names",
        "none",
    ),
    OptionSpec("--algoperf-device", "auto, cpu or cuda (default: auto)", "auto"),
    OptionSpec("--algoperf-seed", "session seed from which every run's seed derives (default: 0)", "0"),
    OptionSpec(
        "--algoperf-output",
        "folder for results.json, eval_measurements.csv files (default: .algoperf)",
        ".algoperf",
    ),
    OptionSpec("--algoperf-data-dir", "folder with real data files (MNIST idx, CIFAR-10 binary)", ""),
    OptionSpec(
        "--algoperf-eval-every-steps",
        "evaluate every N steps instead of every eval_period_time_sec, so "
        "steps to target do not depend on machine speed (a deviation from AlgoPerf)",
        "",
    ),
    OptionSpec(
        "--algoperf-save-baseline", "write times and steps to target of this session to a JSON file", ""
    ),
    OptionSpec(
        "--algoperf-baseline", "compare with a baseline JSON file; a regression fails the session", ""
    ),
    OptionSpec(
        "--algoperf-tolerance", "allowed slowdown against the baseline, as a fraction (default: 0.2)", "0.2"
    ),
    OptionSpec(
        "--algoperf-tolerance-sec",
        "allowed slowdown in seconds on top of --algoperf-tolerance: timings under about a second are "
        "noise on a shared CPU (default: 1.0)",
        "1.0",
    ),
    OptionSpec(
        "--algoperf-threads",
        "CPU threads per benchmark process (default: auto, the cores divided by the pytest-xdist workers)",
        "auto",
    ),
    OptionSpec("--algoperf-ruleset", "tuning ruleset: external or self (default: external)", "external"),
    OptionSpec("--algoperf-trials", "external tuning: trials per study (default: 1)", "1"),
    OptionSpec(
        "--algoperf-studies", "studies per workload; a workload's time is their median (default: 1)", "1"
    ),
    OptionSpec(
        "--algoperf-reference-submission",
        "score relative to this submission instead of the best one per workload",
        "",
    ),
    OptionSpec(
        "--algoperf-variant-scoring",
        "v0.6 (default): variants are reported, not scored; v0.5: a missed variant makes its base workload's "
        "time inf, and a missed base its variants'",
        "v0.6",
    ),
]
VARIANT_SCORING = ("v0.6", "v0.5")


@dataclass(frozen=True)
class Settings:
    submissions: tuple[str, ...]
    frameworks: tuple[str, ...]
    workloads: tuple[str, ...]  # empty: every base workload
    device: str
    seed: int
    output: Path
    data_dir: str | None
    eval_every_steps: int | None
    save_baseline: Path | None
    baseline: Path | None
    tolerance: float
    tolerance_sec: float
    threads: int | None = None  # None: choose automatically
    ruleset: str = "external"
    trials: int = 1
    studies: int = 1
    reference_submission: str | None = None
    variant_scoring: str = "v0.6"
    variants: str = "none"  # none, all, held-out or a comma list of variant names

    @property
    def benchmarking(self) -> bool:
        return bool(self.submissions)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("algoperf", "AlgoPerf training-algorithm benchmarks")
    for option in OPTIONS:
        group.addoption(
            option.flag,
            dest=option.dest,
            action="append" if option.repeatable else "store",
            default=None,
            help=option.help,
        )
        parser.addini(option.dest, option.help, type=option.ini_type, default=option.default)


def raw_value(config: pytest.Config, option: OptionSpec) -> Any:
    """The option's value by precedence: command line, then ini, then default."""
    value = config.getoption(option.dest)
    return value if value is not None else config.getini(option.dest)


def resolve_settings(config: pytest.Config) -> Settings:
    """Read and validate every option; a bad value is a usage error naming the flag and what it accepts."""
    raw = {option.dest: raw_value(config, option) for option in OPTIONS}
    rootdir = Path(config.rootpath)  # the output folder is rootdir-relative, like pytest's cache_dir
    invocation_dir = Path(config.invocation_params.dir)
    submissions = tuple(dict.fromkeys(raw["algoperf_submission"] or ()))
    frameworks = _comma_list(raw["algoperf_framework"]) or default_frameworks(submissions, invocation_dir)
    for framework in frameworks:
        _check_choice("--algoperf-framework", framework, FRAMEWORKS)
    _check_choice("--algoperf-device", raw["algoperf_device"], DEVICES)
    _check_choice("--algoperf-ruleset", raw["algoperf_ruleset"], RULESETS)
    _check_choice("--algoperf-variant-scoring", raw["algoperf_variant_scoring"], VARIANT_SCORING)
    return Settings(
        submissions=submissions,
        frameworks=tuple(frameworks),
        workloads=tuple(_comma_list(raw["algoperf_workloads"])),
        device=raw["algoperf_device"],
        seed=_number("--algoperf-seed", raw["algoperf_seed"], int, minimum=0),
        output=_path(rootdir, raw["algoperf_output"]) or rootdir / ".algoperf",
        data_dir=raw["algoperf_data_dir"] or None,
        eval_every_steps=_number(
            "--algoperf-eval-every-steps", raw["algoperf_eval_every_steps"], int, minimum=1
        )
        if raw["algoperf_eval_every_steps"]
        else None,
        save_baseline=_user_path(config, "algoperf_save_baseline", raw, invocation_dir, rootdir),
        baseline=_user_path(config, "algoperf_baseline", raw, invocation_dir, rootdir),
        tolerance=_number("--algoperf-tolerance", raw["algoperf_tolerance"], float, minimum=0),
        tolerance_sec=_number("--algoperf-tolerance-sec", raw["algoperf_tolerance_sec"], float, minimum=0),
        threads=None
        if raw["algoperf_threads"] in ("", "auto")
        else _number("--algoperf-threads", raw["algoperf_threads"], int, minimum=1),
        ruleset=raw["algoperf_ruleset"],
        trials=_number("--algoperf-trials", raw["algoperf_trials"], int, minimum=1),
        studies=_number("--algoperf-studies", raw["algoperf_studies"], int, minimum=1),
        reference_submission=raw["algoperf_reference_submission"] or None,
        variant_scoring=raw["algoperf_variant_scoring"],
        variants=",".join(_comma_list(raw["algoperf_variants"])) or "none",
    )


def _comma_list(value: str) -> list[str]:
    """Names in order, each once: a repeated name would collect the same test twice."""
    return list(dict.fromkeys(part.strip() for part in str(value).split(",") if part.strip()))


def _check_choice(flag: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise pytest.UsageError(f"{flag}={value!r} is not valid; choose one of: {', '.join(choices)}")


def _number(flag: str, value: Any, kind: type, minimum: float) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"{flag}={value!r} is not a valid {kind.__name__}") from None
    if number < minimum:
        raise pytest.UsageError(f"{flag}={value!r} must be at least {minimum}")
    return number


def _user_path(
    config: pytest.Config, dest: str, raw: dict[str, Any], invocation_dir: Path, rootdir: Path
) -> Path | None:
    """A file named on the command line is relative to where pytest ran; one in the ini file to rootdir."""
    from_command_line = config.getoption(dest) is not None
    return _path(invocation_dir if from_command_line else rootdir, raw[dest])


def _path(base: Path, value: str) -> Path | None:
    return base / value if value else None
