"""Framework adapters: what the clock and the harness need from PyTorch or JAX, behind one Protocol.

Adapters are imported lazily, so a PyTorch session never imports JAX and the reverse.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

FRAMEWORKS = ("pytorch", "jax")


class FrameworkAdapter(Protocol):
    """The framework-specific services of a benchmark run."""

    name: str

    def select_device(self, requested: str) -> str:
        """Resolve ``auto|cpu|cuda`` to the device a run uses; raise ``ValueError`` when it is unavailable."""

    def activate(self, device: str, threads: int | None = None) -> None:
        """Make ``device`` the default for arrays created from now on; use at most ``threads`` CPU threads."""

    def make_rng(self, seed: int) -> Any: ...

    def fold_in(self, rng: Any, data: int) -> Any: ...

    def split(self, rng: Any, num: int) -> list[Any]: ...

    def synchronize(self, outputs: Any) -> None:
        """Block until the accelerator has finished computing ``outputs`` (the clock reads time after it)."""

    def versions(self) -> dict[str, str]: ...


def get_adapter(framework: str) -> FrameworkAdapter:
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}; choose one of {', '.join(FRAMEWORKS)}")
    module = importlib.import_module(f"pytest_algoperf.frameworks.{framework}_adapter")
    return module.ADAPTER
