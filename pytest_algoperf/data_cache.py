"""Generated datasets cached on disk, shared by pytest-xdist workers and by later sessions.

The built-in workloads generate their data deterministically from a seed (seconds of CPU each). A data
module marks its generator with ``@disk_cached(version=N)``; a call then loads the arrays from
``<cache>/data/<generator>-<parameters digest>-<code digest>.npz`` when that file is there and valid, and
otherwise generates them and writes the file. The file name carries:

- the generator's arguments (every bound argument with its default, as JSON), so other parameters never
  share a file;
- ``version`` (bump it when the generator's output changes for reasons its source does not show), a digest
  of the generator module's source (any edit to it makes a new file) and numpy's version (whose random
  streams the generators draw from).

Rules:

- Writes are atomic: the arrays go to a temporary file in the same folder, which is renamed over the final
  name, so a reader never sees half a file. Generation holds an exclusive lock (``flock``) on a
  ``.lock`` file beside it: a second process (another xdist worker) that wants the same dataset waits and
  then loads it instead of generating it again; other datasets are not blocked.
- Files are ``.npz`` read with ``allow_pickle=False``: arrays, strings and numbers only
  (``pytest_algoperf.array_codec``), with their key inside (``__meta__``, checked on load).
- A file that cannot be read (corrupted, truncated) or whose key does not match (stale) is regenerated and
  rewritten, with a ``DataCacheWarning``. Files of older versions of the same generator and parameters are
  removed when the new one is written.
- The folder is ``$PYTEST_ALGOPERF_CACHE_DIR``, else ``$XDG_CACHE_HOME/pytest-algoperf``, else
  ``~/.cache/pytest-algoperf``; ``PYTEST_ALGOPERF_CACHE_DIR=off`` disables the disk cache. A folder that
  cannot be written warns once and the data are generated in memory as before. Deleting the folder is
  always safe.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import os
import sys
import tempfile
import typing
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from pytest_algoperf import array_codec

CACHE_DIR_VARIABLE = "PYTEST_ALGOPERF_CACHE_DIR"
DISABLED = "off"
META_KEY = "__meta__"
FORMAT = 1  # the layout of the files themselves

F = TypeVar("F", bound=Callable[..., Any])


class DataCacheWarning(UserWarning):
    """A cached dataset was unreadable or stale and was regenerated, or the cache folder is unusable."""


def cache_root(environ: Mapping[str, str] | None = None) -> Path | None:
    """The cache folder (not created), or None when ``PYTEST_ALGOPERF_CACHE_DIR=off``."""
    env = os.environ if environ is None else environ
    chosen = env.get(CACHE_DIR_VARIABLE, "").strip()
    if chosen.lower() == DISABLED:
        return None
    if chosen:
        return Path(chosen).expanduser()
    base = env.get("XDG_CACHE_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".cache") / "pytest-algoperf"


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def dataset_key(generator: Callable[..., Any], version: int, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """What identifies one generated dataset: the generator, its arguments, its version and code."""
    module = sys.modules[generator.__module__]
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):  # no source (a frozen or interactive module): the version alone decides
        source = ""
    return {
        "format": FORMAT,
        "generator": f"{generator.__module__}.{generator.__qualname__}",
        "arguments": dict(arguments),
        "version": version,
        "source": hashlib.sha256(source.encode()).hexdigest()[:16],
        "numpy": np.__version__,
    }


def cache_path(folder: Path, key: Mapping[str, Any]) -> Path:
    """``<generator>-<arguments digest>-<digest of everything else>.npz``: files of other versions of the
    same generator and arguments share the first two parts, so they can be found and removed."""
    code = {name: value for name, value in key.items() if name not in ("generator", "arguments")}
    stem = f"{key['generator']}-{_digest(key['arguments'])}"
    return folder / f"{stem}-{_digest(code)}.npz"


def read(path: Path, key: Mapping[str, Any]) -> dict[str, np.ndarray] | None:
    """The arrays in ``path`` when it exists and holds ``key``; None when it is missing. An unreadable or
    stale file warns and reads as missing."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as error:
        warnings.warn(
            f"cached data {path} is unreadable ({type(error).__name__}: {error}); generating it again",
            DataCacheWarning,
            stacklevel=3,
        )
        return None
    stored_key = _stored_key(arrays.pop(META_KEY, None))
    if stored_key != json.loads(json.dumps(key)):
        warnings.warn(
            f"cached data {path} was made for {stored_key}, not {dict(key)}; generating it again",
            DataCacheWarning,
            stacklevel=3,
        )
        return None
    return arrays


def _stored_key(meta: np.ndarray | None) -> Any:
    if meta is None:
        return None
    try:
        return json.loads(meta.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def write(path: Path, arrays: Mapping[str, np.ndarray], key: Mapping[str, Any]) -> None:
    """Write ``arrays`` and ``key`` to ``path`` atomically (a temporary file renamed over it), then remove
    the files of other versions of the same generator and arguments."""
    meta = np.frombuffer(json.dumps(key, sort_keys=True).encode(), dtype=np.uint8)
    handle, temporary = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays, **{META_KEY: meta})
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    prefix = path.name.rsplit("-", 1)[0] + "-"
    for older in path.parent.glob(f"{prefix}*.npz"):
        if older != path:
            with contextlib.suppress(OSError):
                older.unlink()


@contextlib.contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (created if missing). Where ``fcntl`` does not exist
    (Windows), nothing is locked: two processes may then both generate, and the atomic rename keeps the
    file whole either way."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(lock_path, "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _decoded(path: Path, arrays: dict[str, np.ndarray] | None, annotation: Any) -> Any:
    """The dataset rebuilt from ``arrays`` (None stays None); arrays that do not make one warn as stale."""
    if arrays is None:
        return None
    try:
        return array_codec.decode(annotation, arrays)
    except (KeyError, ValueError, TypeError) as error:
        warnings.warn(
            f"cached data {path} does not hold the expected fields ({error!r}); generating it again",
            DataCacheWarning,
            stacklevel=4,
        )
        return None


_unusable_folders: set[Path] = set()


def load_or_generate(
    generate: Callable[[], Any], annotation: Any, key: Mapping[str, Any], root: Path | None
) -> Any:
    """The dataset of ``key``: from the cache under ``root`` when there, else ``generate()``'s (written to
    the cache for next time). ``annotation`` is its type, to rebuild it from the stored arrays."""
    if root is None:
        return generate()
    folder = root / "data"
    path = cache_path(folder, key)
    value = _decoded(path, read(path, key), annotation)
    if value is not None:
        return value
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with exclusive(path.with_suffix(".lock")):
            # Another process may have written it while this one waited for the lock.
            value = _decoded(path, read(path, key), annotation)
            if value is not None:
                return value
            value = generate()
            write(path, array_codec.encode(value), key)
            return value
    except OSError as error:
        if folder not in _unusable_folders:
            _unusable_folders.add(folder)
            warnings.warn(
                f"cannot cache generated data in {folder} ({error}); generating in memory instead. Set "
                f"{CACHE_DIR_VARIABLE} to a writable folder, or to {DISABLED!r} to silence this",
                DataCacheWarning,
                stacklevel=3,
            )
        return generate()


def disk_cached(version: int) -> Callable[[F], F]:
    """Cache the return value of a dataset generator on disk (see the module docstring). The generator's
    return annotation must be one ``array_codec`` rebuilds; its arguments must be JSON values."""

    def decorate(generator: F) -> F:
        signature = inspect.signature(generator)

        @functools.wraps(generator)
        def cached(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            key = dataset_key(generator, version, bound.arguments)
            annotation = typing.get_type_hints(generator)["return"]  # at call time: classes defined below
            return load_or_generate(lambda: generator(*args, **kwargs), annotation, key, cache_root())

        return typing.cast(F, cached)

    return decorate
