"""The import hook behind ``algoperf`` and ``algorithmic_efficiency`` (see the package docstring).

``import algoperf`` gets a fresh, empty package module carrying ``COMPAT_MARKER``; its submodules
(``algoperf.spec`` ...) are the modules of ``pytest_algoperf.compat`` themselves, shared by both names, so
``algoperf.spec.TrainingCompleteError`` is the very class the training loop catches. The package's
``__path__`` is empty, so Python's path finder never loads a second copy of a module from it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Sequence
from typing import Any

ALIASES = ("algoperf", "algorithmic_efficiency")
# AlgoPerf's module name -> the module serving it.
PROVIDED = {
    "spec": "pytest_algoperf.compat.spec",
    "pytorch_utils": "pytest_algoperf.compat.pytorch_utils",
    "jax_sharding_utils": "pytest_algoperf.compat.jax_sharding_utils",
    "random_utils": "pytest_algoperf.compat.random_utils",
    "param_utils": "pytest_algoperf.compat.param_utils",
}
COMPAT_MARKER = "__pytest_algoperf_compat__"


def is_compat_module(module: object) -> bool:
    """Whether ``module`` is one of the packages this finder made (not a real AlgoPerf install)."""
    return bool(getattr(module, COMPAT_MARKER, False))


class AlgoPerfFinder(importlib.abc.MetaPathFinder):
    """Finds ``algoperf``/``algorithmic_efficiency`` and their provided modules, after every other finder."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, module = fullname.partition(".")
        if package not in ALIASES or "." in module:
            return None
        if not module:
            return importlib.machinery.ModuleSpec(fullname, _PackageLoader(), is_package=True)
        if not is_compat_module(sys.modules.get(package)):
            return None  # a submodule missing from a real install stays missing
        if module not in PROVIDED:
            return importlib.machinery.ModuleSpec(fullname, _MissingModuleLoader())
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(PROVIDED[module]))


class _PackageLoader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        package = types.ModuleType(spec.name, f"AlgoPerf's API, served by pytest-algoperf ({__name__}).")
        setattr(package, COMPAT_MARKER, True)
        package.__path__ = []  # submodules come from AlgoPerfFinder alone

        def __getattr__(name: str) -> Any:  # ``import algoperf; algoperf.spec`` works as in a real install
            if name in PROVIDED:
                return importlib.import_module(f"{spec.name}.{name}")
            raise AttributeError(f"module {spec.name!r} has no attribute {name!r}")

        package.__getattr__ = __getattr__  # type: ignore[method-assign]
        return package

    def exec_module(self, module: types.ModuleType) -> None:
        pass


class _AliasLoader(importlib.abc.Loader):
    """Loads a name as an existing module: both aliases share one module object per provided module."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: types.ModuleType) -> None:
        pass


class _MissingModuleLoader(importlib.abc.Loader):
    """A module of AlgoPerf's package that pytest-algoperf does not provide: say so, and what to do."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        provided = ", ".join(PROVIDED)
        raise ModuleNotFoundError(
            f"No module named {spec.name!r}: pytest-algoperf provides AlgoPerf's {provided} modules to "
            "submissions (AlgoPerf's workloads, input pipelines and runner are its own); install AlgoPerf's "
            "package to use the rest",
            name=spec.name,
        )

    def exec_module(self, module: types.ModuleType) -> None:
        pass


_FINDER = AlgoPerfFinder()


def install() -> None:
    """Append the finder to ``sys.meta_path`` once: consulted after Python's finders, it never shadows an
    installed ``algoperf`` or ``algorithmic_efficiency``."""
    if not any(isinstance(finder, AlgoPerfFinder) for finder in sys.meta_path):
        sys.meta_path.append(_FINDER)
