"""Which workloads exist, and where each framework's implementation lives.

Implementations are named as ``"module:Class"`` strings and imported on first use, so listing workloads
imports neither framework. Projects add their own through the ``pytest_algoperf_add_workloads`` hook.
"""

from __future__ import annotations

import importlib
import pkgutil
import random
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import algoperf_workloads
from pytest_algoperf.frameworks.parameter_scale import resolved_parameter_scale, scale_parameters
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

    def create(
        self, framework: str, data_dir: str | None, device: str, parameter_scale: float | None = None
    ) -> Workload:
        """An instance, its parameters stored at ``parameter_scale`` (default: the workload's own
        ``parameter_scale``, 1 if it has none; ``frameworks.parameter_scale``)."""
        workload = self.workload_class(framework)(data_dir=data_dir, device=device)
        workload.name = self.name
        workload.base_name = self.base_name or self.name
        return scale_parameters(workload, resolved_parameter_scale(workload, parameter_scale), framework)


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

    def variants_of(self, base: str) -> list[str]:
        return sorted(e.name for e in self if e.is_variant and e.base_name == base)

    def select(self, named: Sequence[str], variants: str, seed: int) -> list[str]:
        """The session's workloads in order, each base workload followed by its selected variants.

        ``named`` are the ``--algoperf-workloads`` (default: the default suite), which may name variants
        directly. ``variants`` is ``none``, ``all``, ``held-out`` (one variant per base workload, drawn
        from the session seed, as AlgoPerf v0.5 held out one per workload) or a comma list of variants.
        Raises ValueError naming unknown variants.
        """
        names = list(named) or self.base_names()
        chosen: dict[str, list[str]] = {name: [] for name in names}
        if variants == "all":
            for name in names:
                chosen[name] = self.variants_of(name)
        elif variants == "held-out":
            for name in names:
                candidates = self.variants_of(name)
                if candidates:
                    chosen[name] = [random.Random(zlib.crc32(f"{seed}/{name}".encode())).choice(candidates)]
        elif variants != "none":
            listed = [v.strip() for v in variants.split(",") if v.strip()]
            unknown = [v for v in listed if v not in self.entries or not self.entries[v].is_variant]
            if unknown:
                known = ", ".join(e.name for e in self if e.is_variant) or "none are registered"
                raise ValueError(f"unknown variant {', '.join(unknown)}; known variants: {known}")
            for variant in listed:
                chosen.setdefault(self.entries[variant].base_name, []).append(variant)
        ordered = []
        for base, selected in chosen.items():
            ordered += [base] if base in names else []
            ordered += [v for v in selected if v not in ordered]
        return list(dict.fromkeys(ordered))


def workload_family(
    base_name: str, base_class: str, variant_classes: Mapping[str, str], **base_options: Any
) -> list[WorkloadEntry]:
    """A built-in base workload and its variants, each class named alike in the ``pytorch`` and ``jax``
    modules of ``algoperf_workloads.<base_name>``; ``variant_classes`` maps variant names to class names."""
    package = f"algoperf_workloads.{base_name}"

    def implementations(class_name: str) -> dict[str, str]:
        return {framework: f"{package}.{framework}:{class_name}" for framework in ("pytorch", "jax")}

    base = WorkloadEntry(base_name, implementations(base_class), **base_options)
    variants = [
        WorkloadEntry(name, implementations(class_name), base_name=base_name, is_variant=True)
        for name, class_name in variant_classes.items()
    ]
    return [base, *variants]


def builtin_entries() -> list[WorkloadEntry]:
    """The ``WORKLOADS`` lists of the folders in ``workloads/``; their ``__init__`` imports no framework."""
    entries = []
    for folder in sorted(pkgutil.iter_modules(algoperf_workloads.__path__), key=lambda m: m.name):
        if folder.ispkg:
            package = importlib.import_module(f"algoperf_workloads.{folder.name}")
            entries.extend(getattr(package, "WORKLOADS", []))
    return entries


def default_suite() -> tuple[str, ...]:
    """The built-in workloads a session runs when none are named (the base suite)."""
    registry = WorkloadRegistry()
    for entry in builtin_entries():
        registry.add(entry)
    return tuple(registry.base_names())
