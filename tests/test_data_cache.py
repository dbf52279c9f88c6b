"""Generated data cached on disk (pytest_algoperf.data_cache): generated once, loaded after, keyed by the
generator's arguments, version and code, written atomically, safe when two workers want it at once, and
regenerated with a warning when a file is corrupted or stale. Datasets travel as plain arrays
(pytest_algoperf.array_codec), never pickle."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from pytest_algoperf import array_codec, data_cache
from pytest_algoperf.data_cache import CACHE_DIR_VARIABLE, DataCacheWarning, cache_root, disk_cached


@dataclass(frozen=True)
class Part:
    values: np.ndarray
    names: tuple[str, ...]
    scale: float


@dataclass(frozen=True)
class Dataset:
    train: Part
    tables: tuple[np.ndarray, ...]
    size: int
    source: str


CALLS: list[tuple[int, int]] = []


@disk_cached(version=1)
def make_dataset(seed: int, size: int = 4) -> Dataset:
    """A dataset of every kind of field the codec stores; each call is counted in CALLS."""
    CALLS.append((seed, size))
    rng = np.random.default_rng(seed)
    part = Part(rng.random((size, 3)).astype(np.float32), tuple(f"row {i}" for i in range(size)), 0.5)
    return Dataset(part, (np.arange(size), np.ones((2, 2), bool)), size, "generated")


@disk_cached(version=1)
def make_splits(seed: int) -> dict[str, Part]:
    CALLS.append((seed, -1))
    return {name: Part(np.full(2, seed + index), (), 1.0) for index, name in enumerate(("train", "test"))}


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache folder for this test, and no counted calls yet."""
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(tmp_path))
    CALLS.clear()
    return tmp_path / "data"


def only_file(folder: Path) -> Path:
    (path,) = folder.glob("*.npz")
    return path


def assert_same(first: Dataset, second: Dataset) -> None:
    np.testing.assert_array_equal(first.train.values, second.train.values)
    assert first.train.values.dtype == second.train.values.dtype
    assert (first.train.names, first.train.scale, first.size, first.source) == (
        second.train.names,
        second.train.scale,
        second.size,
        second.source,
    )
    assert len(first.tables) == len(second.tables)
    for a, b in zip(first.tables, second.tables, strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype


def test_generated_once_then_loaded_as_equal_arrays(cache: Path) -> None:
    first = make_dataset(3)
    second = make_dataset(3)
    assert CALLS == [(3, 4)]
    assert_same(first, second)
    assert make_splits(5)["test"].values.tolist() == [6, 6] and make_splits(5)["train"].values.tolist() == [
        5,
        5,
    ]
    assert CALLS == [(3, 4), (5, -1)]
    (path,) = cache.glob("*make_dataset*.npz")
    with np.load(path, allow_pickle=False) as stored:  # plain named arrays: no pickle needed
        assert {"train/values", "train/names", "tables/0", "tables/1", "size"} <= set(stored.files)


def test_other_arguments_and_versions_make_other_files(cache: Path) -> None:
    make_dataset(3)
    make_dataset(3, size=5)
    make_dataset(4)
    make_dataset(seed=3, size=4)  # the same arguments, spelt otherwise: the same file
    assert CALLS == [(3, 4), (3, 5), (4, 4)]
    assert len(list(cache.glob("*.npz"))) == 3

    def regenerate(seed: int, size: int = 4) -> Dataset:
        return make_dataset.__wrapped__(seed, size)

    regenerate.__qualname__ = make_dataset.__qualname__
    disk_cached(version=2)(regenerate)(3)  # the same generator and arguments, a new version
    assert CALLS[-1] == (3, 4) and len(CALLS) == 4
    # The new version's file replaced the old version's for the same arguments; the others stay.
    assert len(list(cache.glob("*.npz"))) == 3


def test_a_corrupted_file_is_regenerated_with_a_warning(cache: Path) -> None:
    first = make_dataset(3)
    path = only_file(cache)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated, as by a crash or full disk
    with pytest.warns(DataCacheWarning, match="unreadable"):
        again = make_dataset(3)
    assert_same(first, again)
    assert len(CALLS) == 2
    assert_same(first, make_dataset(3))  # rewritten whole: read without a warning, no third generation
    assert len(CALLS) == 2


def test_a_stale_file_is_regenerated_with_a_warning(cache: Path) -> None:
    make_dataset(3)
    path = only_file(cache)
    with np.load(path) as stored:
        arrays = {name: stored[name] for name in stored.files}
    key = json.loads(arrays.pop(data_cache.META_KEY).tobytes())
    arrays["train/values"] = arrays["train/values"] + 1  # data of another generator version ...
    key["version"] = 0  # ... which its key says
    data_cache.write(path, arrays, key)
    with pytest.warns(DataCacheWarning, match="was made for"):
        again = make_dataset(3)
    np.testing.assert_array_equal(again.train.values, make_dataset.__wrapped__(3).train.values)
    assert len(CALLS) == 3  # the first call, the regeneration, and the direct call just above


def test_a_file_missing_a_field_is_regenerated_with_a_warning(cache: Path) -> None:
    make_dataset(3)
    path = only_file(cache)
    with np.load(path) as stored:
        arrays = {name: stored[name] for name in stored.files if name != "source"}
    key = json.loads(arrays.pop(data_cache.META_KEY).tobytes())
    data_cache.write(path, arrays, key)
    with pytest.warns(DataCacheWarning, match="expected fields"):
        assert make_dataset(3).source == "generated"


def test_writes_are_atomic_and_a_failed_write_leaves_no_file(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as patched:
        patched.setattr(np, "savez", crash)
        with pytest.warns(DataCacheWarning, match="cannot cache"):
            dataset = make_dataset(3)  # generated in memory: the run goes on
    assert dataset.size == 4
    assert not list(cache.glob("*.npz")) and not list(cache.glob("*.tmp"))
    make_dataset(3)
    assert [p.suffix for p in cache.iterdir() if p.suffix != ".lock"] == [".npz"]  # no temporary files left


def test_two_workers_at_once_generate_the_dataset_once(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two callers (as two xdist workers) want the same dataset at the same moment: one generates it
    while the other waits on the lock, then loads the file."""
    started = threading.Event()

    @disk_cached(version=1)
    def slow_dataset(seed: int) -> np.ndarray:
        CALLS.append((seed, 0))
        started.set()
        time.sleep(0.3)
        return np.arange(seed)

    results: list[np.ndarray] = []
    workers = [threading.Thread(target=lambda: results.append(slow_dataset(7))) for _ in range(2)]
    workers[0].start()
    started.wait(5)
    workers[1].start()
    for worker in workers:
        worker.join(10)
    assert CALLS == [(7, 0)]
    assert [r.tolist() for r in results] == [list(range(7))] * 2


def test_the_cache_folder_and_switching_it_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cache_root({CACHE_DIR_VARIABLE: str(tmp_path)}) == tmp_path
    assert cache_root({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "pytest-algoperf"
    assert cache_root({}) == Path.home() / ".cache" / "pytest-algoperf"
    assert cache_root({CACHE_DIR_VARIABLE: "off"}) is None
    monkeypatch.setenv(CACHE_DIR_VARIABLE, "off")
    CALLS.clear()
    make_dataset(3)
    make_dataset(3)
    assert len(CALLS) == 2  # generated each time, nothing written
    assert not any(tmp_path.iterdir())


def test_an_unwritable_folder_warns_once_and_generates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "a file, not a folder"
    blocked.write_text("")
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(blocked))
    with pytest.warns(DataCacheWarning, match="cannot cache generated data"):
        assert make_dataset(3).size == 4


def test_the_codec_refuses_what_would_need_pickle() -> None:
    with pytest.raises(array_codec.CodecError, match="pickle"):
        array_codec.encode({"objects": np.array([{}, None], dtype=object)})
    with pytest.raises(array_codec.CodecError, match="cannot store a set"):
        array_codec.encode({"values": {1, 2}})
    empty = Part(np.zeros(0), (), 0.0)
    assert array_codec.decode(Part, array_codec.encode(empty)).names == ()
