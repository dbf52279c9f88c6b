"""JAX's persistent compilation cache: on for evaluation functions, off for training steps unless asked.

A JAX run's first steps compile the submission's step, and AlgoPerf's clock counts that time; evaluation is
untimed. So the policy is:

- The built-in workloads' evaluation (``JaxArrays.eval_model``) compiles through a persistent cache in
  ``<cache>/jax-eval`` (the data cache's folder, ``pytest_algoperf.data_cache.cache_root``): a later session
  or xdist worker loads the compiled eval functions instead of compiling them again (wall time only: evals
  are untimed). JAX's cache is process-wide, so it is switched on around each evaluation and off after it;
  compilations outside (training steps, initialisation) never read or write it.
- Training steps compile as AlgoPerf's do, unless the user sets JAX's own ``JAX_COMPILATION_CACHE_DIR``
  (or ``jax_compilation_cache_dir``): then every compilation uses that cache, first steps included, which is
  a deviation from AlgoPerf's clock (README, "Where we deviate"), warned about once per process.

``PYTEST_ALGOPERF_CACHE_DIR=off`` switches the eval cache off with the data cache. The switching uses
``jax._src.compilation_cache.reset_cache``, a private function: where it is missing the eval cache is off.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator

import jax

from pytest_algoperf.data_cache import cache_root

EVAL_CACHE_FOLDER = "jax-eval"
# Entries that took less to compile are not worth a file: the eval functions take 0.2-2 s.
EVAL_CACHE_MIN_COMPILE_SECONDS = 0.1


class CompilationCacheWarning(UserWarning):
    """JAX's persistent compilation cache serves training steps: first steps may skip compilation."""


def user_cache_dir() -> str | None:
    """The compilation cache the user configured for every compilation (JAX_COMPILATION_CACHE_DIR), if any."""
    return jax.config.jax_compilation_cache_dir


_warned = False


def warn_if_training_steps_are_cached() -> None:
    """Once per process: a cache set by the user also serves the (timed) training steps."""
    global _warned
    folder = user_cache_dir()
    if folder and not _warned:
        _warned = True
        warnings.warn(
            f"JAX's persistent compilation cache is on for every compilation ({folder}): a run's first steps "
            "may load their compiled step instead of compiling it, so its time to target leaves out the "
            "compilation AlgoPerf's clock counts. Unset JAX_COMPILATION_CACHE_DIR for AlgoPerf's timing.",
            CompilationCacheWarning,
            stacklevel=2,
        )


def cache_reset() -> Callable[[], None] | None:
    """JAX's function that makes it read the cache settings again at its next compilation, if it has one:
    without it, a cache switched on for an eval would stay on for the training steps after it."""
    try:
        from jax._src import compilation_cache
    except ImportError:
        return None
    return getattr(compilation_cache, "reset_cache", None)


@contextlib.contextmanager
def eval_compilation_cache() -> Iterator[None]:
    """Compilations inside go through the persistent eval cache (nothing changes when the user's cache is
    on for everything, when the cache folder is off, or when JAX cannot switch its cache off again)."""
    root, reset = cache_root(), cache_reset()
    if root is None or reset is None or user_cache_dir():
        yield
        return
    minimum = jax.config.jax_persistent_cache_min_compile_time_secs
    jax.config.update("jax_compilation_cache_dir", str(root / EVAL_CACHE_FOLDER))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", EVAL_CACHE_MIN_COMPILE_SECONDS)
    reset()
    try:
        yield
    finally:
        jax.config.update("jax_compilation_cache_dir", None)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", minimum)
        reset()
