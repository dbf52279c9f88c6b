"""Command-line options and their ini mirrors, resolved once into ``Settings``.

Precedence: a command-line flag beats the ini setting (``pytest.ini``, ``[tool.pytest.ini_options]``...),
which beats the built-in default. Each flag ``--algoperf-x-y`` has the ini key ``algoperf_x_y``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_algoperf.frameworks import FRAMEWORKS
from pytest_algoperf.gate.schedule import SCHEDULES
from pytest_algoperf.gate.verdicts import Tolerances, parse_tolerances
from pytest_algoperf.score.tuning import RULESETS
from pytest_algoperf.submission import default_frameworks

DEVICES = ("auto", "cpu", "cuda")
STEP_HINT = "step_hint"


@dataclass(frozen=True)
class OptionSpec:
    flag: str
    help: str
    default: Any = None
    ini_type: str = "string"
    repeatable: bool = False
    is_flag: bool = False  # takes no value on the command line; "true"/"false" in ini

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
    OptionSpec(
        "--algoperf-list",
        "list every workload and variant with its metric, targets, budget, eval period, step-mode schedule, "
        "hardware profile and whether the default suite runs it; then exit",
        "false",
        is_flag=True,
    ),
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
        "--algoperf-max-global-steps",
        "step_hint (default): training completes at the workload's step_hint (x1.5 under self-tuning), "
        "as AlgoPerf's scoring runs set its --max_global_steps; none: only the budget and the targets end "
        "a run; N: at step N on every workload",
        STEP_HINT,
    ),
    OptionSpec(
        "--algoperf-save-baseline", "write times and steps to target of this session to a JSON file", ""
    ),
    OptionSpec(
        "--algoperf-baseline", "compare with a baseline JSON file; a regression fails the session", ""
    ),
    OptionSpec(
        "--algoperf-update-baseline",
        "with --algoperf-baseline: rewrite the file's entries for what this session measured and keep the "
        "rest; regressions are reported but accepted",
        "false",
        is_flag=True,
    ),
    OptionSpec(
        "--algoperf-allow-recalibration",
        "compare with a baseline made under other targets, budgets or eval periods (refused otherwise)",
        "false",
        is_flag=True,
    ),
    OptionSpec(
        "--algoperf-baseline-code",
        "the baseline's code, to measure step times interleaved with the candidate's: a built-in name, a "
        "folder or .py file, or git:REV (the submission's folder at that git revision)",
        "",
    ),
    OptionSpec(
        "--algoperf-schedule",
        "steps: evals every N steps and a step budget from the calibrated step rate (or the baseline file), "
        "so a seed gives the same steps on any load; time: AlgoPerf's time-based evals and budget; auto "
        "(default): steps when a baseline is saved, compared or updated, time otherwise",
        "auto",
    ),
    OptionSpec(
        "--algoperf-tolerance",
        "allowed slowdown against the baseline, as a fraction, with per-workload values: "
        "'0.1 ogbg_mini:0.3' (default: 0.1)",
        "0.1",
    ),
    OptionSpec(
        "--algoperf-tolerance-sec",
        "allowed slowdown in seconds on top of --algoperf-tolerance for stored times: timings under about a "
        "second are noise on a shared CPU (default: 1.0)",
        "1.0",
    ),
    OptionSpec(
        "--algoperf-paired-sec",
        "seconds of interleaved step-time measurement per run with --algoperf-baseline-code (default: 6)",
        "6",
    ),
    OptionSpec(
        "--algoperf-hang-timeout",
        "seconds a submission step may take before the run fails as hung (default: the run's budget, at "
        "least 30 s)",
        "",
    ),
    OptionSpec(
        "--algoperf-threads",
        "CPU threads per benchmark process (default: auto, the CPU hardware profile's thread count that fits "
        "in the cores divided by the pytest-xdist workers)",
        "auto",
    ),
    OptionSpec(
        "--algoperf-hardware-profile",
        "hardware profile whose budgets apply: auto (default: the one matching this session's device, CPU "
        "threads or GPU model) or a profile name, to borrow another hardware's budgets knowingly",
        "auto",
    ),
    OptionSpec(
        "--algoperf-share-devices",
        "let pytest-xdist workers share GPUs, and workers x threads exceed the CPUs (default: refused, since "
        "each run's time would include the others' work)",
        "false",
        is_flag=True,
    ),
    OptionSpec(
        "--algoperf-shard",
        "K/N: run only shard K of N of the planned runs (a deterministic split, balanced by budgets); merge "
        "the shards' results with python -m pytest_algoperf.merge",
        "",
    ),
    OptionSpec("--algoperf-ruleset", "tuning ruleset: external or self (default: external)", "external"),
    OptionSpec("--algoperf-trials", "external tuning: trials per study (default: 1)", "1"),
    OptionSpec(
        "--algoperf-tuning-search-space",
        "external tuning: this tuning_search_space.json instead of the one beside the submission (as "
        "AlgoPerf's --tuning_search_space)",
        "",
    ),
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
    tolerances: Tolerances = field(default_factory=Tolerances)
    threads: int | None = None  # None: choose automatically
    ruleset: str = "external"
    trials: int = 1
    tuning_search_space: Path | None = None  # None: the submission's own
    studies: int = 1
    reference_submission: str | None = None
    variant_scoring: str = "v0.6"
    variants: str = "none"  # none, all, held-out or a comma list of variant names
    schedule: str = "auto"  # auto, time or steps (pytest_algoperf.gate.schedule)
    update_baseline: bool = False
    allow_recalibration: bool = False
    baseline_code: str | None = None
    paired_sec: float = 6.0
    hang_timeout: float | None = None  # None: the run's budget, at least 30 s
    hardware_profile: str | None = None  # None: the profile matching the device
    share_devices: bool = False
    shard: tuple[int, int] | None = None  # (K, N): shard K (from 1) of N
    max_global_steps: int | str | None = STEP_HINT  # a step, "step_hint", or None for no cap

    @property
    def benchmarking(self) -> bool:
        return bool(self.submissions)

    @property
    def gating(self) -> bool:
        """A baseline is saved, compared or updated: the session runs in step mode unless told otherwise."""
        return bool(self.save_baseline or self.baseline)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("algoperf", "AlgoPerf training-algorithm benchmarks")
    for option in OPTIONS:
        action = "append" if option.repeatable else "store"
        group.addoption(
            option.flag,
            dest=option.dest,
            action="store_const" if option.is_flag else action,
            **({"const": True} if option.is_flag else {}),
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
    _check_choice("--algoperf-schedule", raw["algoperf_schedule"], SCHEDULES)
    try:
        tolerances = parse_tolerances(
            raw["algoperf_tolerance"],
            _number("--algoperf-tolerance-sec", raw["algoperf_tolerance_sec"], float, minimum=0),
        )
    except ValueError as error:
        raise pytest.UsageError(f"--algoperf-tolerance: {error}") from None
    baseline = _user_path(config, "algoperf_baseline", raw, invocation_dir, rootdir)
    update_baseline = _flag(raw["algoperf_update_baseline"])
    if update_baseline and baseline is None:
        raise pytest.UsageError(
            "--algoperf-update-baseline needs --algoperf-baseline=FILE: the file whose entries it rewrites"
        )
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
        baseline=baseline,
        tolerances=tolerances,
        threads=None
        if raw["algoperf_threads"] in ("", "auto")
        else _number("--algoperf-threads", raw["algoperf_threads"], int, minimum=1),
        ruleset=raw["algoperf_ruleset"],
        trials=_number("--algoperf-trials", raw["algoperf_trials"], int, minimum=1),
        tuning_search_space=_user_path(config, "algoperf_tuning_search_space", raw, invocation_dir, rootdir),
        studies=_number("--algoperf-studies", raw["algoperf_studies"], int, minimum=1),
        reference_submission=raw["algoperf_reference_submission"] or None,
        variant_scoring=raw["algoperf_variant_scoring"],
        variants=",".join(_comma_list(raw["algoperf_variants"])) or "none",
        schedule=raw["algoperf_schedule"],
        update_baseline=update_baseline,
        allow_recalibration=_flag(raw["algoperf_allow_recalibration"]),
        baseline_code=raw["algoperf_baseline_code"] or None,
        paired_sec=_number("--algoperf-paired-sec", raw["algoperf_paired_sec"], float, minimum=0.1),
        hang_timeout=_number("--algoperf-hang-timeout", raw["algoperf_hang_timeout"], float, minimum=0.1)
        if raw["algoperf_hang_timeout"]
        else None,
        hardware_profile=None
        if raw["algoperf_hardware_profile"] in ("", "auto")
        else raw["algoperf_hardware_profile"],
        share_devices=_flag(raw["algoperf_share_devices"]),
        shard=_shard(raw["algoperf_shard"]),
        max_global_steps=_max_global_steps(raw["algoperf_max_global_steps"]),
    )


def _max_global_steps(value: str) -> int | str | None:
    """``--algoperf-max-global-steps``: step_hint, none or a step count of at least 1."""
    text = str(value).strip().lower()
    if text in (STEP_HINT, "none"):
        return None if text == "none" else STEP_HINT
    if not text.isdigit() or int(text) < 1:
        raise pytest.UsageError(
            f"--algoperf-max-global-steps={value!r} is not valid; give step_hint (AlgoPerf's scoring), none "
            "(no step cap) or a step count of at least 1"
        )
    return int(text)


def _shard(value: str) -> tuple[int, int] | None:
    """``--algoperf-shard=K/N``, 1 <= K <= N."""
    if not value:
        return None
    index, _, count = str(value).partition("/")
    try:
        shard = int(index), int(count)
    except ValueError:
        shard = (0, 0)
    if not 1 <= shard[0] <= shard[1]:
        raise pytest.UsageError(
            f"--algoperf-shard={value!r} is not valid; give K/N with 1 <= K <= N, e.g. 2/3 for the second of "
            "three shards"
        )
    return shard


def flag_value(config: pytest.Config, dest: str) -> bool:
    """A flag option by precedence (command line, then ini), as a bool."""
    return _flag(raw_value(config, next(option for option in OPTIONS if option.dest == dest)))


def _flag(value: Any) -> bool:
    """A flag's value: True from the command line, a bool or a string from ini."""
    return value is True or str(value).strip().lower() in ("true", "1", "yes", "on")


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
