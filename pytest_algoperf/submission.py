"""Finding, importing and validating a submission (ALGOPERF.md section 1).

A submission is a Python module per framework defining five functions. It is named either by a built-in
name (``adamw`` -> ``submissions/adamw/pytorch.py``), by a folder holding ``<framework>.py``, or by a path
to a ``.py`` file; its ``tuning_search_space.json`` is the one beside that file. Everything here runs
before any training, so a broken submission is reported as one clear usage error.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import algoperf_submissions

BUILTIN_SUBMISSIONS_DIR = Path(next(iter(algoperf_submissions.__path__)))
SEARCH_SPACE_FILE = "tuning_search_space.json"

# The parameters the harness passes by keyword; a submission's functions must accept each of them.
REQUIRED_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "get_batch_size": ("workload_name",),
    "init_optimizer_state": ("workload", "model_params", "model_state", "hyperparameters", "rng"),
    "update_params": (
        "workload",
        "current_param_container",
        "current_params_types",
        "model_state",
        "hyperparameters",
        "batch",
        "loss_type",
        "optimizer_state",
        "eval_results",
        "global_step",
        "rng",
    ),
    "data_selection": (
        "workload",
        "input_queue",
        "optimizer_state",
        "current_param_container",
        "model_state",
        "hyperparameters",
        "global_step",
        "rng",
    ),
}
OPTIONAL_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "prepare_for_eval": (
        "workload",
        "current_param_container",
        "current_params_types",
        "model_state",
        "hyperparameters",
        "loss_type",
        "optimizer_state",
        "eval_results",
        "global_step",
        "rng",
    ),
}


class SubmissionError(Exception):
    """A submission that cannot be found, imported or called; the message names the file and the fix."""


@dataclass(frozen=True)
class SubmissionSource:
    """Where a submission lives, before it is imported."""

    name: str
    framework: str
    path: Path

    @property
    def search_space_path(self) -> Path:
        return self.path.parent / SEARCH_SPACE_FILE


def builtin_submission_names() -> list[str]:
    return sorted(
        p.name for p in BUILTIN_SUBMISSIONS_DIR.iterdir() if p.is_dir() and not p.name.startswith("_")
    )


def resolve_submission(spec: str, framework: str, cwd: Path) -> SubmissionSource:
    """Turn a ``--algoperf-submission`` value into the file for ``framework``."""
    as_path = (cwd / spec).resolve()
    if spec.endswith(".py"):
        if not as_path.is_file():
            raise SubmissionError(f"submission file {spec!r} does not exist (looked at {as_path})")
        name = as_path.parent.name if as_path.stem in ("pytorch", "jax") else as_path.stem
        return SubmissionSource(name, framework, as_path)
    builtin = BUILTIN_SUBMISSIONS_DIR / spec
    folder = as_path if as_path.is_dir() else builtin
    if not folder.is_dir() or (folder is builtin and spec not in builtin_submission_names()):
        raise SubmissionError(
            f"unknown submission {spec!r}: give a built-in name ({', '.join(builtin_submission_names())}), "
            f"a folder holding {framework}.py, or a path to a .py file"
        )
    path = folder / f"{framework}.py"
    if not path.is_file():
        raise SubmissionError(f"submission {spec!r} has no {framework} implementation: {path} does not exist")
    return SubmissionSource(folder.name, framework, path)


@dataclass
class Submission:
    """An imported, validated submission module, with the call conventions of the harness."""

    source: SubmissionSource
    module: ModuleType

    @property
    def name(self) -> str:
        return self.source.name

    def function(self, name: str) -> Callable[..., Any] | None:
        return getattr(self.module, name, None)

    def get_batch_size(self, workload_name: str, base_workload_name: str) -> int:
        """The global batch size; a ``ValueError`` for a variant is retried with its base workload's name."""
        try:
            return int(self.module.get_batch_size(workload_name))
        except ValueError:
            if base_workload_name == workload_name:
                raise
            return int(self.module.get_batch_size(base_workload_name))

    def update_params(self, train_state: Mapping[str, Any], **kwargs: Any) -> Any:
        if self._accepts_train_state:
            kwargs["train_state"] = train_state
        return self.module.update_params(**kwargs)

    @property
    def _accepts_train_state(self) -> bool:
        return "train_state" in inspect.signature(self.module.update_params).parameters


def load_submission(source: SubmissionSource) -> Submission:
    """Import the submission file under a private module name and check its functions' signatures.

    The file is executed afresh on every call, so an edited submission is never served from a stale import.
    """
    module_name = f"algoperf_submission_{source.name}_{source.framework}_{zlib.crc32(bytes(source.path)):x}"
    spec = importlib.util.spec_from_file_location(module_name, source.path)
    if spec is None or spec.loader is None:
        raise SubmissionError(f"{source.path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # as importlib does: dataclasses and pickling look modules up here
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # a broken submission is the user's input, reported without a traceback
        del sys.modules[module_name]
        raise SubmissionError(
            f"{source.path}: importing it failed: {type(error).__name__}: {error}"
        ) from error
    problems = signature_problems(module)
    if problems:
        raise SubmissionError(f"{source.path}: {problems[0]}")
    return Submission(source, module)


def signature_problems(module: ModuleType) -> list[str]:
    """Every way the module breaks the submission contract, as readable sentences."""
    problems = []
    for name, params in {**REQUIRED_FUNCTIONS, **OPTIONAL_FUNCTIONS}.items():
        function = getattr(module, name, None)
        if function is None:
            if name in REQUIRED_FUNCTIONS:
                problems.append(f"{name}() is missing; a submission defines {', '.join(REQUIRED_FUNCTIONS)}")
            continue
        if not callable(function):
            problems.append(f"{name} is not a function")
            continue
        try:
            inspect.signature(function).bind(**dict.fromkeys(params))
        except TypeError as error:
            problems.append(f"{name}() has the wrong signature ({error}); it must accept {', '.join(params)}")
    return problems
