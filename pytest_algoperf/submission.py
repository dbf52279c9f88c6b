"""Finding, importing and validating a submission (ALGOPERF.md section 1).

A submission is a Python module per framework defining five functions. It is named either by a built-in
name (``adamw`` -> ``submissions/adamw/pytorch.py``), by a folder holding ``<framework>.py``, or by a path
to a ``.py`` file (an AlgoPerf ``submission.py`` is named after its folder); its
``tuning_search_space.json`` is the one beside that file. A file written for AlgoPerf's harness runs
unchanged: AlgoPerf's package is importable (``pytest_algoperf.compat``), the file's folder is importable as
AlgoPerf's runner makes it (``pytest_algoperf.submission_imports``), and a batch size known only by AlgoPerf's
workload names is scaled to the mini workloads (``pytest_algoperf.batch_size_rule``). Everything here runs
before any training, so a broken submission is reported as one clear usage error.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import algoperf_submissions
from pytest_algoperf import batch_size_rule, compat
from pytest_algoperf.frameworks import FRAMEWORKS
from pytest_algoperf.submission_imports import load_module, single_framework

BUILTIN_SUBMISSIONS_DIR = Path(next(iter(algoperf_submissions.__path__)))
SEARCH_SPACE_FILE = "tuning_search_space.json"
# File names that say nothing about the submission, so it is named after its folder.
GENERIC_FILE_NAMES = ("pytorch", "jax", "submission")

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
    root: Path | None = None  # where pytest ran: the submission's absolute imports start there

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
        check_framework(spec, as_path, framework)
        name = as_path.parent.name if as_path.stem in GENERIC_FILE_NAMES else as_path.stem
        return SubmissionSource(name, framework, as_path, cwd)
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
    return SubmissionSource(folder.name, framework, path, cwd)


def framework_written_for(spec: str, cwd: Path) -> str | None:
    """The framework a ``.py`` submission is written for: ``pytorch.py``/``jax.py`` by name, any other file
    by its imports (torch, or jax/flax/optax); None for built-in names, folders and undecidable files."""
    path = (cwd / spec).resolve()
    if not spec.endswith(".py") or not path.is_file():
        return None
    return path.stem if path.stem in FRAMEWORKS else single_framework(path)


def default_frameworks(specs: Sequence[str], cwd: Path) -> tuple[str, ...]:
    """The frameworks of a session that names none: the one every submission file is written for, when
    they all agree (an AlgoPerf ``submission.py`` needs no flag), else pytorch."""
    written_for = {framework_written_for(spec, cwd) for spec in specs}
    return (written_for.pop(),) if len(written_for) == 1 and None not in written_for else ("pytorch",)


def check_framework(spec: str, path: Path, framework: str) -> None:
    """A single file written for one framework (by its imports) cannot run under the other."""
    written_for = single_framework(path)
    if written_for is not None and written_for != framework:
        raise SubmissionError(
            f"{spec} imports {'torch' if written_for == 'pytorch' else 'jax'} only: it is a {written_for} "
            f"submission and cannot run under {framework}; run it with --algoperf-framework={written_for}"
        )


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
        """The global batch size; a ``ValueError`` for a variant is retried with its base workload's name,
        then with the AlgoPerf workloads they stand for (``pytest_algoperf.batch_size_rule``)."""
        return batch_size_rule.batch_size(self.module.get_batch_size, workload_name, base_workload_name)

    def train_state_argument(self, train_state: Callable[[], Mapping[str, Any]]) -> dict[str, Any]:
        """The ``train_state`` keyword for ``update_params``: ``train_state()`` only if its signature names
        it (built only then), else nothing."""
        return {"train_state": train_state()} if self.accepts_train_state else {}

    @functools.cached_property
    def accepts_train_state(self) -> bool:
        """Whether ``update_params`` names ``train_state`` (then the harness builds it for each step).
        Read once: inspect.signature costs tens of microseconds, a tenth of a small model's step."""
        return "train_state" in inspect.signature(self.module.update_params).parameters


def load_submission(source: SubmissionSource) -> Submission:
    """Import the submission file under a private module name and check its functions' signatures.

    The file is executed afresh on every call, so an edited submission is never served from a stale import.
    AlgoPerf's package names are importable while it runs, unless AlgoPerf is installed (then it is used).
    """
    compat.install()
    try:
        builtin = source.path.is_relative_to(BUILTIN_SUBMISSIONS_DIR)  # packages: they import absolutely
        module = load_module(source.path, source.name, source.root, expose_folder=not builtin)
    except Exception as error:  # a broken submission is the user's input, reported without a traceback
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
