"""Which workloads exist, and where each framework's implementation lives.

Implementations are named as ``"module:Class"`` strings and imported on first use, so listing workloads
imports neither framework. Projects add their own through the ``pytest_algoperf_add_workloads`` hook.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import algoperf_workloads
from pytest_algoperf.spec import Workload

WorkloadClass = type[Workload]


@dataclass(frozen=True)
class WorkloadEntry:
    """One workload (or variant) and its implementation per framework."""

    name: str
    implementations: Mapping[str, str | WorkloadClass]
    base_name: str = ""
    is_variant: bool = False
    requires_data: str | None = None  # a reason to skip when no --algoperf-data-dir is given
    in_default_suite: bool = True  # False until its targets are calibrated: it runs only when named

    def workload_class(self, framework: str) -> WorkloadClass:
        target = self.implementations.get(framework)
        if target is None:
            raise LookupError(f"workload {self.name!r} has no {framework} implementation")
        if isinstance(target, str):
            module_name, _, class_name = target.partition(":")
            target = getattr(importlib.import_module(module_name), class_name)
        return target

    def create(self, framework: str, data_dir: str | None, device: str) -> Workload:
        workload = self.workload_class(framework)(data_dir=data_dir, device=device)
        workload.name = self.name
        workload.base_name = self.base_name or self.name
        return workload


@dataclass
class WorkloadRegistry:
    entries: dict[str, WorkloadEntry] = field(default_factory=dict)

    def add(self, entry: WorkloadEntry) -> None:
        if entry.name in self.entries:
            raise ValueError(f"workload {entry.name!r} is registered twice")
        self.entries[entry.name] = entry

    def register(self, name: str, **implementations: str | WorkloadClass) -> None:
        """Shorthand: ``registry.register("tiny", pytorch=TinyWorkload)``."""
        self.add(WorkloadEntry(name, implementations))

    def __getitem__(self, name: str) -> WorkloadEntry:
        return self.entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def __iter__(self) -> Iterator[WorkloadEntry]:
        return iter(self.entries.values())

    def base_names(self) -> list[str]:
        """The workloads a session runs when none are named: calibrated base workloads."""
        return [e.name for e in self if not e.is_variant and e.in_default_suite]


def builtin_entries() -> list[WorkloadEntry]:
    """The ``WORKLOADS`` lists of the folders in ``workloads/``; their ``__init__`` imports no framework."""
    entries = []
    for folder in sorted(pkgutil.iter_modules(algoperf_workloads.__path__), key=lambda m: m.name):
        if folder.ispkg:
            package = importlib.import_module(f"algoperf_workloads.{folder.name}")
            entries.extend(getattr(package, "WORKLOADS", []))
    return entries
