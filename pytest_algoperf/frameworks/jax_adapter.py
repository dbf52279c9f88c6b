"""JAX: the clock blocks on the step's outputs; devices are chosen with ``jax.default_device``.

With several devices of the run's platform (GPUs, or CPU devices made with
``XLA_FLAGS=--xla_force_host_platform_device_count=N``) a run is data parallel as in AlgoPerf v0.6: a
one-axis ``Mesh`` over all of them, batches sharded on their first (batch) axis and parameters replicated
with ``NamedSharding``, and ``jax.jit`` (not ``pmap``) partitions the submission's step from those
shardings. The computation is the same as on one device; only where it runs changes.

Parameters, model state and the optimizer state reach the submission replicated on the run's mesh (a
one-device mesh when there is one device), as AlgoPerf v0.6's JAX workloads replicate parameters: a step
jitted with ``out_shardings`` on that mesh (``jax_sharding_utils``) then returns them placed as they arrived,
so it compiles once instead of once more at its second call.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from pytest_algoperf.frameworks.jax_compilation_cache import (
    eval_compilation_cache,
    warn_if_training_steps_are_cached,
)
from pytest_algoperf.frameworks.step_keys import KEYS_PER_STEP, StepKeys
from pytest_algoperf.spec import ParameterType, ShapeTuple

BATCH_AXIS = "batch"


class JaxAdapter:
    name = "jax"
    parallel_unit = "JAX devices"

    def __init__(self) -> None:
        self.mesh: Mesh | None = None  # set by activate() when the platform has several devices
        self._device: Any = None  # the run's (first) device, set by activate()
        self._single_device_meshes: dict[Any, Mesh] = {}

    def select_device(self, requested: str) -> str:
        has_gpu = any(d.platform == "gpu" for d in jax.devices()) if jax.default_backend() != "cpu" else False
        if requested == "auto":
            return "cuda" if has_gpu else "cpu"
        if requested == "cuda" and not has_gpu:
            raise ValueError("--algoperf-device=cuda, but JAX sees no GPU (jax.devices() has none)")
        return requested

    def activate(self, device: str, threads: int | None = None) -> None:
        # XLA's thread limit is set once in XLA_FLAGS before its backend starts (pytest_algoperf.threads).
        platform = "gpu" if device == "cuda" else "cpu"
        devices = jax.devices(platform)
        jax.config.update("jax_default_device", devices[0])
        self._device = devices[0]
        warn_if_training_steps_are_cached()
        self.mesh = Mesh(np.array(devices), (BATCH_AXIS,)) if len(devices) > 1 else None

    def data_parallel_size(self) -> int:
        return 1 if self.mesh is None else self.mesh.size

    def run_mesh(self) -> Mesh:
        """The mesh a run's arrays live on: ``mesh`` when data parallel, else one over the run's device."""
        if self.mesh is not None:
            return self.mesh
        device = self._device if self._device is not None else jax.devices()[0]
        if device not in self._single_device_meshes:  # cached: submissions ask for shardings every step
            self._single_device_meshes[device] = Mesh(np.array([device]), (BATCH_AXIS,))
        return self._single_device_meshes[device]

    def replicated(self) -> NamedSharding:
        return NamedSharding(self.run_mesh(), PartitionSpec())

    def batch_sharded(self) -> NamedSharding:
        return NamedSharding(self.run_mesh(), PartitionSpec(BATCH_AXIS))

    def prepare_model(self, params: Any, model_state: Any) -> tuple[Any, Any]:
        replicated = self.replicated()
        return jax.device_put(params, replicated), jax.device_put(model_state, replicated)

    def prepare_optimizer_state(self, optimizer_state: Any) -> Any:
        """Replicate the arrays a submission created on one device (``jnp.zeros`` ...), leaving any it
        placed on a mesh itself and every non-array leaf (an optax update function ...) as they are."""
        replicated = self.replicated()

        def place(leaf: Any) -> Any:
            unplaced = isinstance(leaf, jax.Array) and not isinstance(leaf.sharding, NamedSharding)
            return jax.device_put(leaf, replicated) if unplaced else leaf

        return jax.tree.map(place, optimizer_state)

    def eval_params(self, params: Any) -> Any:
        return params

    def put_batch_array(self, array: np.ndarray) -> jax.Array:
        """A batch array on the device, or sharded on its first axis over the mesh. An array whose first
        axis does not divide (a last, smaller eval batch; packed graph rows) is replicated instead: jit
        computes the same result either way, and the training batch size is checked to divide."""
        if self.mesh is None:
            return jnp.asarray(array)
        divides = np.ndim(array) > 0 and np.shape(array)[0] % self.mesh.size == 0
        spec = PartitionSpec(BATCH_AXIS) if divides else PartitionSpec()
        return jax.device_put(array, NamedSharding(self.mesh, spec))

    def make_rng(self, seed: int) -> Any:
        return jax.random.PRNGKey(seed)

    def split(self, rng: Any, num: int) -> list[Any]:
        return list(jax.random.split(rng, num))

    def step_keys(self, rng: Any) -> StepKeys:
        return StepKeys(rng, lambda key, first, count: np.asarray(_step_keys_block(key, first, count)))

    def synchronize(self, outputs: Any) -> None:
        jax.block_until_ready(outputs)

    def versions(self) -> dict[str, str]:
        import flax
        import optax

        return {"jax": jax.__version__, "flax": flax.__version__, "optax": optax.__version__}


@functools.partial(jax.jit, static_argnums=2)
def _step_keys_block(rng: Any, first: int, count: int) -> jax.Array:
    """``split(fold_in(rng, step), KEYS_PER_STEP)`` for ``count`` steps from ``first``, in one dispatch."""
    steps = first + jnp.arange(count)
    return jax.vmap(lambda step: jax.random.split(jax.random.fold_in(rng, step), KEYS_PER_STEP))(steps)


ADAPTER = JaxAdapter()


def path_names(path: tuple[Any, ...]) -> tuple[str, ...]:
    """``('blocks_0', 'conv1', 'kernel')`` from a ``tree_map_with_path`` key path."""
    return tuple(str(getattr(entry, "key", entry)) for entry in path)


class JaxArrays:
    """Mixin for an ``ArrayWorkload``: numpy arrays become arrays on JAX's default device, and the
    parameter bookkeeping of the Workload API: ``init_model_fn`` calls ``record_param_shapes(params)``, and a
    workload names each parameter's type by ``param_type(names)``, its key path (or overrides
    ``model_params_types``)."""

    _param_shapes: Any

    def to_device(self, array: np.ndarray) -> jax.Array:
        return ADAPTER.put_batch_array(array)

    def eval_model(self, *args: Any, **kwargs: Any) -> dict[str, float]:
        """The workload's evaluation, its jitted functions compiled through the persistent eval cache
        (``jax_compilation_cache``): a later session loads them instead of compiling them again."""
        with eval_compilation_cache():
            return super().eval_model(*args, **kwargs)  # type: ignore[misc]

    def record_param_shapes(self, params: Any) -> None:
        self._param_shapes = jax.tree.map(lambda leaf: ShapeTuple(jnp.shape(leaf)), params)

    @property
    def param_shapes(self) -> Any:
        return self._param_shapes

    @property
    def model_params_types(self) -> Any:
        return jax.tree_util.tree_map_with_path(
            lambda path, _: self.param_type(path_names(path)),
            self.param_shapes,
            is_leaf=lambda x: isinstance(x, tuple),
        )

    def param_type(self, names: tuple[str, ...]) -> ParameterType:
        raise NotImplementedError(f"{type(self).__name__} must define param_type(names)")
