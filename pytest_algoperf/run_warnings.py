"""Warnings raised during a benchmark run, reported once each instead of once per step.

A submission's step may warn at every call (a deprecated call, a scheduler notice); pytest records every
occurrence, so a run of thousands of steps ended with thousands of identical entries in the warnings summary.
``RunWarnings`` records a benchmark test's warnings itself, under the filters in force (``-W error`` still
raises, ``ignore`` still ignores), and hands each distinct warning on once, from the line that raised it,
with how many times it was raised. Warnings are told apart by category and line, not by text, so a message
that names the step (``... at step 1234``) is one warning too.
"""

from __future__ import annotations

import warnings
from collections.abc import Generator, Iterable
from typing import Any

import pytest

from pytest_algoperf.items import BenchmarkItem


def group_by_origin(caught: Iterable[warnings.WarningMessage]) -> list[tuple[warnings.WarningMessage, int]]:
    """The first of each (category, file, line) with its count, in the order they were first raised."""
    groups: dict[tuple[Any, str, int], list[Any]] = {}
    for message in caught:
        key = (message.category, message.filename, message.lineno)
        groups.setdefault(key, [message, 0])[1] += 1
    return [(first, count) for first, count in groups.values()]


def counted(message: warnings.WarningMessage, count: int) -> Warning | str:
    """The warning to report: the first one, its text followed by its count when it was raised again."""
    if count == 1:
        return message.message  # type: ignore[return-value]
    text = f"{message.message} [raised {count} times in this run; reported once]"
    try:
        return message.category(text)
    except Exception:  # a warning class that takes other arguments: report it as it came
        return message.message  # type: ignore[return-value]


class RunWarnings:
    """The plugin: wraps each benchmark test's call phase (registered while benchmarking)."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        if not isinstance(item, BenchmarkItem):
            return (yield)
        caught: list[warnings.WarningMessage] = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                return (yield)
        finally:  # also when the run fails: its warnings are part of the story
            report_once(caught)


def report_once(caught: Iterable[warnings.WarningMessage]) -> None:
    """Warn each distinct warning of ``caught`` once, from the line that raised it."""
    for message, count in group_by_origin(caught):
        warning, origin = counted(message, count), (message.filename, message.lineno)
        warnings.warn_explicit(warning, message.category, *origin, source=message.source)
