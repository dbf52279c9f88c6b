"""AlgoPerf's package, as submissions written for the reference harness import it.

A submission to AlgoPerf imports ``from algoperf import spec``, ``from algoperf.pytorch_utils import
pytorch_setup``, ``from algoperf import jax_sharding_utils`` (or the same modules under the older name
``algorithmic_efficiency``). When neither package is installed, ``install()`` makes both names importable
with this package's modules behind them, which answer from pytest-algoperf's harness: its Workload class and
types, its process group and device, its JAX mesh. A real install always wins: the finder is consulted after
Python's own, and never adds modules to a package it did not create.

The modules, each the name AlgoPerf gives it (see ``PROVIDED`` and the README's "Bring your AlgoPerf
submission" for what is left out, and why):

- ``spec``: every public name of AlgoPerf's ``spec.py``;
- ``pytorch_utils``: ``pytorch_setup()`` and ``sync_ddp_time()``;
- ``jax_sharding_utils``: the reference's sharding helpers, on the run's mesh;
- ``random_utils``: ``PRNGKey``, ``split`` and ``fold_in`` for either framework's keys;
- ``param_utils``: ``pytorch_param_shapes`` and ``jax_param_shapes``.
"""

from pytest_algoperf.compat.finder import ALIASES, PROVIDED, AlgoPerfFinder, install, is_compat_module

__all__ = ["ALIASES", "PROVIDED", "AlgoPerfFinder", "install", "is_compat_module"]
