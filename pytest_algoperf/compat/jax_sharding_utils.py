"""AlgoPerf v0.6's ``jax_sharding_utils``, on the mesh of the run (``JaxAdapter.run_mesh``).

AlgoPerf builds ``Mesh(jax.devices(), ('batch',))`` at every call; the harness's mesh is the same one (all
devices of the run's platform on the ``batch`` axis), or one over the run's device, so shardings made here
are the ones the harness gives parameters, optimizer state and batches, and a step jitted with them compiles
once.
"""

from __future__ import annotations

from typing import Any

import jax
from jax.sharding import NamedSharding

from pytest_algoperf.frameworks.jax_adapter import ADAPTER


def get_replicate_sharding() -> NamedSharding:
    """A sharding that replicates an array on every device of the run."""
    return ADAPTER.replicated()


def get_batch_dim_sharding() -> NamedSharding:
    """A sharding that splits an array's first (batch) axis over the devices of the run."""
    return ADAPTER.batch_sharded()


def shard_along_batch_dim(x: Any) -> Any:
    """Every array of the tree ``x`` split on its first axis over the devices of the run."""
    sharding = get_batch_dim_sharding()
    return jax.tree.map(lambda leaf: jax.device_put(leaf, sharding), x)


def replicate(x: Any) -> Any:
    """Every array of the tree ``x`` replicated on the devices of the run."""
    sharding = get_replicate_sharding()
    return jax.tree.map(lambda leaf: jax.device_put(leaf, sharding), x)


def display_shard_info(x: jax.Array) -> None:
    """Print where each shard of ``x`` lives, as AlgoPerf's helper does."""
    for shard in x.addressable_shards:
        print(f"shard.device: {shard.device}, index: {shard.index}, replica_id: {shard.replica_id}.\n")
