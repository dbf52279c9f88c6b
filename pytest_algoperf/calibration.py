"""Targets, budgets and eval periods as data: one ``calibration.json`` per workload folder.

Each entry records the numbers and the command that produced them (ALGOPERF.md section 7), so a reader can
rerun it. Targets and ``step_hint`` sit in the entry and are shared by all hardware; the budget, eval period
and calibrated step rate sit in one of its hardware profiles (``pytest_algoperf.hardware.profiles``).
``CalibratedWorkload`` serves the workload properties from such an entry under its active profile.

``step_hint`` is AlgoPerf's: the steps the baseline can take in the budget. The targets were set by runs
that schedule over 3/4 of it (``target_setting_steps``), as AlgoPerf's target-setting baselines do, so a
submission's step_hint-long schedule is 4/3 of the one the targets were set with.

An entry's ``parameter_scale`` (default 1) is how the workload stores its parameters (``w = scale * theta``,
``frameworks.parameter_scale``): the targets were set at that scale and hold only there, so it sits beside
them; a variant has its own, the scale its targets were set at.

A variant (ALGOPERF.md section 6) has an entry of its own in its base workload's file with its own validation
and test targets only: its budget, eval period and step_hint are its base workload's.

An entry without ``profiles`` (the layout before hardware profiles) holds its budget keys itself; they serve
whatever the hardware, as they did.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from pytest_algoperf.hardware import profiles as hardware
from pytest_algoperf.hardware.profiles import DeviceDescription, HardwareProfile
from pytest_algoperf.spec import Workload

TARGET_KEYS = ("validation_target", "test_target")
BUDGET_KEYS = ("max_allowed_runtime_sec", "eval_period_time_sec", "step_hint")
REQUIRED_KEYS = TARGET_KEYS + BUDGET_KEYS
PROFILES = "profiles"
# Shared by all hardware, like the targets it was calibrated with; its own per entry, so a variant whose
# targets were set before its base workload's scale changed keeps the scale of its targets.
PARAMETER_SCALE = "parameter_scale"
# AlgoPerf's target-setting baselines schedule over this share of step_hint (``workload.step_hint * 0.75``
# in its prize-qualification target-setting submissions); its scored baselines, over the whole step_hint.
TARGET_SETTING_SHARE = 0.75


class CalibrationError(ValueError):
    """A calibration file that is missing or malformed; the message names the file and the key."""


@dataclass(frozen=True)
class Calibration:
    validation_target: float
    test_target: float
    max_allowed_runtime_sec: float
    eval_period_time_sec: float
    step_hint: int
    command: str = ""
    source: str = ""
    steps_in_budget: int | None = None  # measured: the framework's own, or the fastest one's, steps in it
    hardware_profile: str = ""  # the profile the budget comes from; "" for an entry without profiles
    # The standard deviation of the calibration reruns' best validation values: how far one run of the
    # baseline falls from the (median) target by its seed alone. None with fewer than two reruns.
    seed_std: float | None = None


def target_setting_steps(step_hint: int) -> int:
    """The schedule length of a run that sets targets: AlgoPerf's 3/4 of ``step_hint``."""
    return round(TARGET_SETTING_SHARE * step_hint)


def seed_std(values: dict[str, Any]) -> float | None:
    """The sample standard deviation of an entry's ``measured.reruns`` best validation values."""
    best = [float(r["best_validation"]) for r in values.get("measured", {}).get("reruns", [])]
    return statistics.stdev(best) if len(best) > 1 else None


def read_calibration_file(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CalibrationError(f"{path}: cannot read calibration data ({error})") from error
    return data


def entry_parameter_scale(path: Path, entry: str) -> float:
    """The parameter scale ``entry``'s targets were set with (``frameworks.parameter_scale``; 1 where the
    entry names none or does not exist yet: a variant being calibrated for the first time)."""
    try:
        values = read_calibration_file(path).get(entry, {})
    except CalibrationError:
        return 1.0
    scale = values.get(PARAMETER_SCALE, 1.0)
    if not (isinstance(scale, int | float) and scale > 0 and math.isfinite(scale)):
        raise CalibrationError(
            f"{path}: entry {entry!r} has {PARAMETER_SCALE} {scale!r}; it must be a positive number"
        )
    return float(scale)


def _read_entry(path: Path, entry: str, required: tuple[str, ...]) -> dict[str, Any]:
    data = read_calibration_file(path)
    if entry not in data:
        raise CalibrationError(f"{path}: no entry {entry!r}; entries are {', '.join(sorted(data))}")
    values = data[entry]
    if PROFILES in values:  # the budget keys are the profile's
        required = tuple(key for key in required if key not in hardware.BUDGET_KEYS)
    missing = [key for key in required if key not in values]
    if missing:
        raise CalibrationError(f"{path}: entry {entry!r} lacks {', '.join(missing)}")
    return values


def _budget(
    path: Path, entry: str, values: dict[str, Any], profile: str | None, framework: str | None = None
) -> HardwareProfile | None:
    """The entry's budget under ``profile`` (None: its first, the reference calibration), ``framework``'s
    own where the profile has one; None without profiles."""
    profiles = values.get(PROFILES)
    if profiles is None:
        return None
    if not profiles:
        raise CalibrationError(f"{path}: entry {entry!r} has an empty {PROFILES!r}")
    name = profile or next(iter(profiles))
    if name not in profiles:
        raise CalibrationError(
            f"{path}: entry {entry!r} has no hardware profile {name!r}; its profiles are "
            f"{', '.join(profiles)}"
        )
    try:
        return HardwareProfile.from_json(name, profiles[name], framework)
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise CalibrationError(
            f"{path}: entry {entry!r}, profile {name!r} is malformed ({error!r})"
        ) from None


def load_calibration(
    path: Path,
    entry: str,
    base_entry: str | None = None,
    profile: str | None = None,
    framework: str | None = None,
) -> Calibration:
    """Read ``entry`` (a workload or data-source name) from a calibration file. With ``base_entry`` (a
    variant's base workload), only the targets come from ``entry`` and the budget from ``base_entry``.
    ``profile`` names the hardware profile of the budget (default: the entry's first); ``framework``, the
    framework whose own budget applies where the profile has one (``hardware.profiles``). A variant keeps
    its base's shared budget: its targets were calibrated in runs limited by that one."""
    values = _read_entry(path, entry, TARGET_KEYS if base_entry else REQUIRED_KEYS)
    budget_entry = base_entry or entry
    budget = _read_entry(path, base_entry, BUDGET_KEYS) if base_entry else values
    chosen = _budget(path, budget_entry, budget, profile, None if base_entry else framework)
    return Calibration(
        validation_target=float(values["validation_target"]),
        test_target=float(values["test_target"]),
        max_allowed_runtime_sec=chosen.max_allowed_runtime_sec
        if chosen
        else float(budget["max_allowed_runtime_sec"]),
        eval_period_time_sec=chosen.eval_period_time_sec if chosen else float(budget["eval_period_time_sec"]),
        step_hint=int(budget["step_hint"]),
        command=str(values.get("command", "")),
        source=str(values.get("source", "")),
        steps_in_budget=chosen.steps_in_budget
        if chosen
        else budget.get("measured", {}).get("steps_in_budget"),
        hardware_profile=chosen.name if chosen else "",
        seed_std=seed_std(values),
    )


def offered_profiles(path: Path) -> dict[str, HardwareProfile] | None:
    """The hardware profiles every budget entry of the file has (mnist's two data sources each have one),
    by name, as the first such entry records them; None for a file without profiles."""
    entries = [values for values in read_calibration_file(path).values() if PROFILES in values]
    if not entries:
        return None
    common = [name for name in entries[0][PROFILES] if all(name in e[PROFILES] for e in entries)]
    return {name: HardwareProfile.from_json(name, entries[0][PROFILES][name]) for name in common}


def offered_devices(workload_class: type[Workload]) -> dict[str, DeviceDescription] | None:
    """Profile name -> device for a workload class; None when its budget is not per hardware (a workload
    with its own class attributes, or a calibration file without profiles)."""
    if not issubclass(workload_class, CalibratedWorkload):
        return None
    profiles = offered_profiles(workload_class.calibration_file)
    return None if profiles is None else {name: p.device for name, p in profiles.items()}


def reference_budget(workload_class: type[Workload]) -> float | None:
    """The budget of a workload class before any instance exists: its reference (first) profile's, or its
    class attribute; a weight for splitting runs into shards, the same on every machine."""
    if issubclass(workload_class, CalibratedWorkload):
        profiles = offered_profiles(workload_class.calibration_file)
        if profiles:
            return next(iter(profiles.values())).max_allowed_runtime_sec
        entries = read_calibration_file(workload_class.calibration_file).values()
        return next(
            (float(e["max_allowed_runtime_sec"]) for e in entries if "max_allowed_runtime_sec" in e), None
        )
    budget = getattr(workload_class, "max_allowed_runtime_sec", None)
    return float(budget) if isinstance(budget, int | float) else None


def target_setter(path: Path, entry: str) -> tuple[str, dict[str, Any]] | None:
    """The (submission, point) whose reruns set ``entry``'s targets, as its ``measured`` block records them
    (an entry written before it named the submission was set by ``adamw``); None if it records no point."""
    measured = read_calibration_file(path).get(entry, {}).get("measured", {})
    if "point" not in measured:
        return None
    return str(measured.get("submission", "adamw")), dict(measured["point"])


class CalibratedWorkload(Workload):
    """A workload whose targets and budget come from entry ``calibration_entry`` of ``calibration_file``,
    the budget from hardware profile ``hardware_profile`` (set by the session; default: the entry's first)."""

    calibration_file: Path
    _hardware_profile: str | None = None
    _budget_framework: str | None = None

    @property
    def calibration_entry(self) -> str:
        return self.name

    @property
    def is_variant(self) -> bool:
        return bool(self.base_name) and self.base_name != self.name

    @property  # type: ignore[override]
    def hardware_profile(self) -> str:
        """The hardware profile whose budget, eval period and step rate this workload uses."""
        return self.calibration.hardware_profile

    @hardware_profile.setter
    def hardware_profile(self, name: str) -> None:
        self._hardware_profile = name or None
        self.__dict__.pop("calibration", None)  # read again under the new profile

    @property
    def budget_framework(self) -> str | None:
        """The framework whose own budget applies, where the profile gives one (set by the session; None:
        the profile's shared budget, the slowest framework's)."""
        return self._budget_framework

    @budget_framework.setter
    def budget_framework(self, framework: str | None) -> None:
        self._budget_framework = framework or None
        self.__dict__.pop("calibration", None)

    @cached_property
    def calibration(self) -> Calibration:
        entry = self.calibration_entry
        # A variant under its own name keeps its base's budget; an entry named otherwise (mnist's data
        # sources) is whole.
        base_entry = self.base_name if self.is_variant and entry == self.name else None
        return load_calibration(
            self.calibration_file, entry, base_entry, self._hardware_profile, self._budget_framework
        )

    @contextmanager
    def without_target(self, step_hint: int | None = None) -> Iterator[None]:
        """For one run that no target stops (calibrate's, ``validity.horizon``'s): the targets out of reach
        and step_hint ``step_hint``, by default the target-setting schedule's (``target_setting_steps``).
        Afterwards step_hint is back; the targets stay out of reach (a workload being calibrated has none)."""
        try:
            calibration = self.calibration
        except CalibrationError:  # a new variant: no targets yet; it trains in its base's budget
            calibration = load_calibration(self.calibration_file, self.base_name)
        unreachable = math.inf if self.target_metric_higher_is_better else -math.inf
        self.calibration = replace(
            calibration,
            validation_target=unreachable,
            test_target=unreachable,
            step_hint=step_hint or target_setting_steps(calibration.step_hint),
        )
        try:
            yield
        finally:
            self.calibration = replace(self.calibration, step_hint=calibration.step_hint)

    @property
    def parameter_scale(self) -> float:
        """How the workload stores its parameters (``w = scale * theta``, ``frameworks.parameter_scale``):
        the scale its calibration entry's targets were set with; ``WorkloadEntry.create`` applies it."""
        return entry_parameter_scale(self.calibration_file, self.calibration_entry)

    @property
    def validation_target_value(self) -> float:
        return self.calibration.validation_target

    @property
    def test_target_value(self) -> float:
        return self.calibration.test_target

    @property
    def max_allowed_runtime_sec(self) -> float:
        return self.calibration.max_allowed_runtime_sec

    @property
    def eval_period_time_sec(self) -> float:
        return self.calibration.eval_period_time_sec

    @property
    def step_hint(self) -> int:
        return self.calibration.step_hint

    @property
    def target_seed_std(self) -> float | None:
        """The seeds' spread of the baseline's best validation value, from the calibration reruns."""
        return self.calibration.seed_std

    @property
    def steps_in_budget(self) -> int | None:
        """Steps the calibration's baseline took in the active profile's budget: this framework's in its own
        budget where the profile gives one, else the fastest framework's in the shared budget (its base
        workload's, for a variant). The calibrated step rate from which the regression gate's step schedule
        is derived."""
        return self.calibration.steps_in_budget


# ---- writing entries (``python -m pytest_algoperf.calibrate --write``) ------------------------------------


def profile_record(values: dict[str, Any], device: DeviceDescription) -> dict[str, Any]:
    """A profile as the file stores it, from calibrate's flat values (budget, eval period, command ...)."""
    measured = values.get("measured", {})
    record: dict[str, Any] = {
        **device.to_json(),
        "max_allowed_runtime_sec": values["max_allowed_runtime_sec"],
        "eval_period_time_sec": values["eval_period_time_sec"],
    }
    if measured.get("steps_in_budget") is not None:
        record["steps_in_budget"] = measured["steps_in_budget"]
    if values.get(hardware.BY_FRAMEWORK):
        record[hardware.BY_FRAMEWORK] = values[hardware.BY_FRAMEWORK]
    record.update(command=values.get("command", ""), machine=measured.get("machine", ""))
    record["date"] = measured.get("date", "")
    record.update({key: values[key] for key in ("derived", "reruns") if key in values})
    return record


def with_profile(entry: dict[str, Any], name: str, record: dict[str, Any]) -> dict[str, Any]:
    """``entry`` with profile ``name`` added or replaced; its targets and other profiles unchanged."""
    return {**entry, PROFILES: {**entry.get(PROFILES, {}), name: record}}


def calibrated_entry(
    values: dict[str, Any], previous: dict[str, Any] | None, name: str, device: DeviceDescription
) -> dict[str, Any]:
    """New targets with profile ``name``'s budget, from calibrate's flat values; the previous entry's other
    profiles are kept (their budgets were measured against the previous targets)."""
    profile_keys = (*hardware.BUDGET_KEYS, hardware.BY_FRAMEWORK, "measured")
    entry = {key: value for key, value in values.items() if key not in profile_keys}
    entry["measured"] = {k: v for k, v in values.get("measured", {}).items() if k != "steps_in_budget"}
    others = {k: v for k, v in (previous or {}).get(PROFILES, {}).items() if k != name}
    entry[PROFILES] = {**others, name: profile_record(values, device)}
    return entry
