"""Importing a submission's file as AlgoPerf's runner does, and telling which framework it is written for.

AlgoPerf's runner imports ``path/to/submission.py`` as the module ``path.to.submission`` from the directory
it runs in, so a submission may import what lies beside it in three ways, all of which work here:

1. relatively, ``from .helpers import f``: the file runs as a module of a private package whose ``__path__``
   is its folder (``load_module``);
2. by the helper's own name, ``from optimizers.shampoo import Shampoo`` for a package ``optimizers/`` beside
   the file: ``FolderFinder`` resolves top-level names to the modules and packages in a loaded submission's
   folder;
3. by its path from the invocation directory, ``from submissions.mine.helpers import f`` when pytest runs
   where ``submissions/`` is: ``FolderFinder`` resolves the path's first folder as a namespace package.

``FolderFinder`` is consulted after Python's own finders, so an installed package of the same name always
wins, and it never serves ``jax.py`` or ``pytorch.py`` (pytest-algoperf's one-file-per-framework layout) as
the ``jax`` package. Two submissions whose folders hold a helper of the same name each get their own: loading
one forgets the other's copy from ``sys.modules`` (its module keeps the objects it imported).
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# Framework file names of pytest-algoperf's submission layout, never imported as top-level modules.
LAYOUT_NAMES = frozenset({"jax", "pytorch"})
# Top-level imports that show which framework a file is written for.
FRAMEWORK_IMPORTS = {"torch": "pytorch", "jax": "jax", "flax": "jax", "optax": "jax"}


@dataclass(frozen=True)
class SubmissionFolder:
    """A loaded submission's folder, and the directory pytest ran in when it lies below it."""

    folder: Path
    root: Path | None = None

    @property
    def root_package(self) -> str | None:
        """The first folder on the way from ``root`` to ``folder``: where absolute imports start."""
        if self.root is None or self.folder == self.root:
            return None
        return self.folder.relative_to(self.root).parts[0]

    def helper_path(self, name: str) -> Path | None:
        """The module file or package directory ``name`` names in the folder, if any."""
        if name in LAYOUT_NAMES or not name.isidentifier() or name == "__init__":
            return None
        package, module = self.folder / name, self.folder / f"{name}.py"
        return package if package.is_dir() else module if module.is_file() else None


class FolderFinder(importlib.abc.MetaPathFinder):
    """Top-level modules beside loaded submissions, and the first folder of their paths from the root."""

    def __init__(self) -> None:
        self.folders: list[SubmissionFolder] = []  # the latest loaded first

    def add(self, entry: SubmissionFolder) -> None:
        self.folders = [entry, *(known for known in self.folders if known.folder != entry.folder)]

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if "." in fullname:
            return None  # submodules are found through their package's __path__, by Python's finders
        for entry in self.folders:
            helper = entry.helper_path(fullname)
            if helper is not None:
                return module_spec(fullname, helper)
            if entry.root_package == fullname:
                return module_spec(fullname, entry.root / fullname)  # type: ignore[operator]
        return None

    def provided_names(self, folder: Path) -> set[str]:
        """The top-level names that ``folder``'s modules and packages would be imported as."""
        entry = SubmissionFolder(folder)
        candidates = {path.stem for path in folder.glob("*.py")} | {p.name for p in folder.iterdir()}
        return {name for name in candidates if entry.helper_path(name) is not None}


def module_spec(name: str, path: Path) -> importlib.machinery.ModuleSpec | None:
    """The spec of a module file, a package directory, or a namespace package (a directory without
    ``__init__.py``)."""
    if path.is_file():
        return importlib.util.spec_from_file_location(name, path)
    init = path / "__init__.py"
    if init.is_file():
        return importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(path)])
    spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
    spec.submodule_search_locations = [str(path)]
    return spec


_FINDER = FolderFinder()


def finder() -> FolderFinder:
    """The process's one ``FolderFinder``, appended to ``sys.meta_path`` on first use."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.append(_FINDER)
    return _FINDER


def forget_other_helpers(folder: Path) -> None:
    """Drop from ``sys.modules`` the modules that another submission's folder provided under a name that
    ``folder`` provides too, so that the submission loaded next imports its own. Only modules loaded from a
    known submission folder are dropped, never an installed package."""
    names = finder().provided_names(folder)
    others = [entry.folder for entry in finder().folders if entry.folder != folder]
    for module_name, module in list(sys.modules.items()):
        if module_name.partition(".")[0] not in names:
            continue
        location = module_location(module)
        if location is not None and any(location.is_relative_to(other) for other in others):
            del sys.modules[module_name]


def module_location(module: types.ModuleType) -> Path | None:
    """The file a module was loaded from, or the first directory of a namespace package."""
    spec = getattr(module, "__spec__", None)
    directories = list(getattr(spec, "submodule_search_locations", None) or [])
    location = getattr(spec, "origin", None) or (directories[0] if directories else None)
    return Path(location).resolve() if isinstance(location, str) and location else None


def private_package(path: Path, name: str) -> str:
    """A fresh package over the submission's folder, for its relative imports; returns its name. It is the
    file's own (another file of the folder, ``jax.py`` beside ``pytorch.py``, gets another one)."""
    folder = path.parent
    package_name = f"algoperf_submission_{name}_{zlib.crc32(bytes(path)):x}"
    for stale in [m for m in sys.modules if m == package_name or m.startswith(package_name + ".")]:
        del sys.modules[stale]  # a submission is executed afresh, its relative imports too
    package = types.ModuleType(package_name, f"The folder of the submission {name!r}: {folder}")
    package.__path__ = [str(folder)]
    package.__package__ = package_name
    sys.modules[package_name] = package
    return package_name


def load_module(path: Path, name: str, root: Path | None, expose_folder: bool = True) -> types.ModuleType:
    """Execute the submission file afresh as a module of its folder's private package, its folder's modules
    importable by name when ``expose_folder``; raises what the file raises (the module is then removed from
    ``sys.modules``)."""
    if expose_folder:
        folder = path.parent.resolve()
        forget_other_helpers(folder)
        under_root = root is not None and folder.is_relative_to(root.resolve())
        finder().add(SubmissionFolder(folder, root.resolve() if under_root else None))  # type: ignore[union-attr]
    module_name = f"{private_package(path, name)}.{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # as importlib does: dataclasses and pickling look modules up here
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def imported_frameworks(path: Path) -> set[str]:
    """The frameworks a Python file imports at its top level (``torch``: pytorch; ``jax``, ``flax``,
    ``optax``: jax); empty when it cannot be parsed (importing it reports why)."""
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return set()
    modules = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    tops = {module.partition(".")[0] for module in modules}
    return {FRAMEWORK_IMPORTS[top] for top in tops if top in FRAMEWORK_IMPORTS}


def single_framework(path: Path) -> str | None:
    """The one framework ``path`` is written for, or None when it imports both or neither."""
    frameworks = imported_frameworks(path)
    return next(iter(frameworks)) if len(frameworks) == 1 else None
