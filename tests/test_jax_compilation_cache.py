"""JAX's persistent compilation cache serves evaluation functions only (pytest_algoperf.frameworks.
jax_compilation_cache): what compiles inside an eval is written and read back, what compiles outside (a
training step) neither; a cache the user turned on for everything is left alone and warned about."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from pytest_algoperf.data_cache import CACHE_DIR_VARIABLE  # noqa: E402
from pytest_algoperf.frameworks import jax_compilation_cache  # noqa: E402
from pytest_algoperf.frameworks.jax_compilation_cache import (  # noqa: E402
    EVAL_CACHE_FOLDER,
    CompilationCacheWarning,
    eval_compilation_cache,
)

HIT = "/jax/compilation_cache/cache_hits"


@pytest.fixture
def cache_hits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """An empty cache folder, every compilation worth an entry, and the list of cache hits as they come."""
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(tmp_path))
    monkeypatch.setattr(jax_compilation_cache, "EVAL_CACHE_MIN_COMPILE_SECONDS", 0.0)
    hits: list[str] = []

    def listen(event: str, **kwargs: object) -> None:
        if event == HIT:
            hits.append(event)

    jax.monitoring.register_event_listener(listen)
    yield hits
    jax.monitoring.unregister_event_listener(listen)


def entries(tmp_path: Path) -> set[str]:
    folder = tmp_path / EVAL_CACHE_FOLDER
    return {path.name for path in folder.iterdir()} if folder.exists() else set()


def test_eval_compilations_are_cached_and_others_are_not(tmp_path: Path, cache_hits: list[str]) -> None:
    def evaluate(x: jax.Array) -> jax.Array:
        return jnp.tanh(x @ x.T).sum() + 17.0  # a computation no other test compiles

    def train_step(x: jax.Array) -> jax.Array:
        return jnp.sin(x * 3.0).mean() - 19.0

    with eval_compilation_cache():
        jax.jit(evaluate)(jnp.ones((3, 5))).block_until_ready()
    written = entries(tmp_path)
    assert written and not cache_hits
    assert jax.config.jax_compilation_cache_dir is None  # switched off again after the eval

    jax.jit(train_step)(jnp.ones((3, 5))).block_until_ready()
    assert entries(tmp_path) == written  # compiled outside an eval: not written
    jax.clear_caches()
    jax.jit(evaluate)(jnp.ones((3, 5))).block_until_ready()
    assert not cache_hits  # outside an eval the cache is not read either, even for a cached computation

    jax.clear_caches()
    with eval_compilation_cache():  # as a later session's first eval: loaded, not compiled
        jax.jit(evaluate)(jnp.ones((3, 5))).block_until_ready()
    assert cache_hits


def test_no_eval_cache_when_the_cache_folder_is_off(
    tmp_path: Path, cache_hits: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_DIR_VARIABLE, "off")
    with eval_compilation_cache():
        jax.jit(lambda x: x * 23.0)(jnp.ones(4)).block_until_ready()
    assert not (tmp_path / EVAL_CACHE_FOLDER).exists()


def test_a_cache_the_user_set_for_everything_is_kept_and_warned_about_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jax_compilation_cache, "_warned", False)
    monkeypatch.setattr(jax_compilation_cache, "user_cache_dir", lambda: str(tmp_path / "everything"))
    with pytest.warns(CompilationCacheWarning, match="first steps"):
        jax_compilation_cache.warn_if_training_steps_are_cached()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jax_compilation_cache.warn_if_training_steps_are_cached()  # once per process
    with eval_compilation_cache():
        assert jax.config.jax_compilation_cache_dir is None  # the user's setting is not overridden
