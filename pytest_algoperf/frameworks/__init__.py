"""Framework adapters: what the clock and the harness need from PyTorch or JAX, behind one Protocol.

Adapters are imported lazily, so a PyTorch session never imports JAX and the reverse.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pytest_algoperf.frameworks.step_keys import StepKeys

FRAMEWORKS = ("pytorch", "jax")
_active = ""


def active_framework() -> str:
    """The framework of the run training in this process ("" before any): it tells AlgoPerf's ``prng``
    helpers which keys a numpy key pair stands for, as AlgoPerf's ``--framework`` flag does."""
    return _active


def set_active_framework(name: str) -> None:
    global _active
    _active = name


class FrameworkAdapter(Protocol):
    """The framework-specific services of a benchmark run."""

    name: str
    parallel_unit: str  # what a global batch is split over, for messages: "JAX devices", "torchrun ranks"

    def select_device(self, requested: str) -> str:
        """Resolve ``auto|cpu|cuda`` to the device a run uses; raise ``ValueError`` when it is unavailable."""

    def activate(self, device: str, threads: int | None = None) -> None:
        """Make ``device`` the default for arrays created from now on; use at most ``threads`` CPU threads."""

    def data_parallel_size(self) -> int:
        """How many devices (JAX) or ranks (PyTorch DDP) each global batch is split over; 1 when serial."""

    def prepare_model(self, params: Any, model_state: Any) -> tuple[Any, Any]:
        """Place a freshly initialised model for data parallelism: DDP-wrapped, or replicated on devices."""

    def prepare_optimizer_state(self, optimizer_state: Any) -> Any:
        """Place a fresh optimizer state as the submission's own step will return it (JAX: replicated)."""

    def eval_params(self, params: Any) -> Any:
        """The parameters evaluation uses (the module inside DDP: eval runs no collective in forward)."""

    def make_rng(self, seed: int) -> Any: ...

    def split(self, rng: Any, num: int) -> list[Any]: ...

    def step_keys(self, rng: Any) -> StepKeys:
        """Each step's four keys, ``split(fold_in(rng, step), 4)``, derived a block of steps at a time."""

    def synchronize(self, outputs: Any) -> None:
        """Block until the accelerator has finished computing ``outputs`` (the clock reads time after it)."""

    def versions(self) -> dict[str, str]: ...


def get_adapter(framework: str) -> FrameworkAdapter:
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}; choose one of {', '.join(FRAMEWORKS)}")
    module = importlib.import_module(f"pytest_algoperf.frameworks.{framework}_adapter")
    return module.ADAPTER
