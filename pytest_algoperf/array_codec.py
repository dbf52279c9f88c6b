"""Generated datasets as flat, named numpy arrays and back, for ``.npz`` files that load without pickle.

A dataset is what a workload's data module returns: a dataclass of arrays (possibly nested, with scalars,
strings, tuples of arrays or of strings), a ``dict`` of such dataclasses keyed by split, or a plain array.
``encode`` flattens it into ``{"path/to/field": array}``; ``decode`` rebuilds it from the type annotation
(``typing.get_type_hints``), so the file holds data only, never code or pickled objects: strings become
unicode arrays, scalars 0-d arrays.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

import numpy as np

SEPARATOR = "/"


class CodecError(TypeError):
    """A value or annotation this codec does not store; the message names the field."""


def encode(value: Any, prefix: str = "") -> dict[str, np.ndarray]:
    """``value`` as named arrays whose names are field paths joined by ``/`` (``train/inputs``)."""
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise CodecError(f"{prefix or 'value'}: object arrays would need pickle")
        return {prefix: value}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
        return _encode_items(fields, prefix)
    if isinstance(value, Mapping):
        return _encode_items(value, prefix)
    if isinstance(value, tuple):
        if all(isinstance(item, str) for item in value):
            return {prefix: np.asarray(value, dtype=str) if value else np.zeros(0, dtype="<U1")}
        return _encode_items({str(index): item for index, item in enumerate(value)}, prefix)
    if isinstance(value, bool | int | float | str | np.generic):
        return {prefix: np.asarray(value)}
    raise CodecError(f"{prefix or 'value'}: cannot store a {type(value).__name__}")


def _encode_items(items: Mapping[str, Any], prefix: str) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for key, item in items.items():
        if SEPARATOR in str(key):
            raise CodecError(f"{prefix}{SEPARATOR}{key}: keys must not contain {SEPARATOR!r}")
        arrays.update(encode(item, f"{prefix}{SEPARATOR}{key}" if prefix else str(key)))
    return arrays


def decode(annotation: Any, arrays: Mapping[str, np.ndarray], prefix: str = "") -> Any:
    """The value of type ``annotation`` that ``encode`` stored under ``prefix`` in ``arrays``."""
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is np.ndarray or origin is np.ndarray:
        return arrays[prefix]
    if dataclasses.is_dataclass(annotation):
        hints = typing.get_type_hints(annotation)
        values = {
            field.name: decode(hints[field.name], arrays, _join(prefix, field.name))
            for field in dataclasses.fields(annotation)
        }
        return annotation(**values)
    if origin in (dict, Mapping) or annotation is dict:
        value_type = arguments[1] if arguments else np.ndarray
        keys = sorted(
            {name[len(prefix) + 1 if prefix else 0 :].split(SEPARATOR)[0] for name in _under(arrays, prefix)}
        )
        return {key: decode(value_type, arrays, _join(prefix, key)) for key in keys}
    if origin is tuple:
        if arguments and arguments[0] is str:
            return tuple(str(item) for item in arrays[prefix].tolist())
        item_type = arguments[0] if arguments else np.ndarray
        count = len({name[len(prefix) + 1 :].split(SEPARATOR)[0] for name in _under(arrays, prefix)})
        return tuple(decode(item_type, arrays, _join(prefix, str(index))) for index in range(count))
    if annotation in (bool, int, float, str):
        return annotation(arrays[prefix].item())
    if origin in (typing.Union, types.UnionType):
        raise CodecError(f"{prefix or 'value'}: optional or union fields are not stored")
    raise CodecError(f"{prefix or 'value'}: cannot rebuild a {annotation!r}")


def _join(prefix: str, name: str) -> str:
    return f"{prefix}{SEPARATOR}{name}" if prefix else name


def _under(arrays: Mapping[str, np.ndarray], prefix: str) -> list[str]:
    return [name for name in arrays if not prefix or name.startswith(prefix + SEPARATOR)]
