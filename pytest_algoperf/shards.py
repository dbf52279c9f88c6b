"""Sharded sessions: ``--algoperf-shard=K/N`` runs the K-th of N deterministic parts of the planned runs.

Each shard is an ordinary session on its own machine (a CI matrix job, a Slurm array task) and writes its
own ``results.json``, which records the whole plan's test ids and this shard's; ``python -m
pytest_algoperf.merge`` checks that the shards cover the plan exactly once and ends the merged session as one
session would (``pytest_algoperf.conclusion``).

The split depends only on the plan and the workloads' reference budgets (their first hardware profile's, the
same on every machine): runs go, longest budget first, to the shard with the least budget so far (ties to the
lower shard, then the earlier run), and keep their planned order within a shard. Every machine therefore
computes the same split without talking to the others. ``-k`` and ``-m`` select among a shard's runs after the
split, so the shards of one plan stay disjoint whatever each selects.

Why not pytest-split's ``--splits N --group K``: it balances groups by a ``.test_durations`` file from an
earlier full run (which benchmark sessions do not have, while budgets are known up front), slices the
collected items after ``-k``, and records nothing a merge could check the coverage with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import pytest

from pytest_algoperf.calibration import reference_budget

if TYPE_CHECKING:
    from pytest_algoperf.session import AlgoPerfSession, PlannedRun


@dataclass(frozen=True)
class ShardPlan:
    index: int  # from 1
    count: int
    planned: tuple[str, ...]  # every planned test id of the session, in order
    assigned: tuple[str, ...]  # this shard's, in planned order

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "count": self.count,
            "planned": list(self.planned),
            "assigned": list(self.assigned),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShardPlan:
        return cls(int(data["index"]), int(data["count"]), tuple(data["planned"]), tuple(data["assigned"]))


def split(weights: Sequence[float], count: int) -> list[int]:
    """The shard (from 0) of each run: longest first onto the least loaded shard (the LPT rule, within 4/3 of
    the best possible longest shard); ties go to the lower shard and the earlier run."""
    loads = [0.0] * count
    owners = [0] * len(weights)
    for run in sorted(range(len(weights)), key=lambda i: (-weights[i], i)):
        shard = min(range(count), key=lambda k: (loads[k], k))
        owners[run] = shard
        loads[shard] += weights[run]
    return owners


@cache
def _class_budget(workload_class: type) -> float | None:
    return reference_budget(workload_class)


def run_weights(session: AlgoPerfSession, plans: Sequence[PlannedRun]) -> list[float]:
    """Each run's reference budget; a skipped run weighs nothing; an unknown budget weighs the mean."""
    budgets: list[float | None] = []
    for plan in plans:
        entry = session.registry[plan.workload]
        if plan.skip_reason or plan.framework not in entry.implementations:
            budgets.append(0.0)
            continue
        try:
            budgets.append(_class_budget(entry.workload_class(plan.framework)))
        except (ImportError, ValueError):
            budgets.append(None)
    known = [b for b in budgets if b]
    default = sum(known) / len(known) if known else 1.0
    return [default if b is None else b for b in budgets]


def shard_plan(session: AlgoPerfSession, plans: Sequence[PlannedRun]) -> ShardPlan | None:
    """The session's shard of ``plans`` (its planned runs), or None when it is not sharded."""
    if session.settings.shard is None:
        return None
    index, count = session.settings.shard
    owners = split(run_weights(session, plans), count)
    assigned = tuple(plan.test_id for plan, owner in zip(plans, owners, strict=True) if owner == index - 1)
    return ShardPlan(index, count, tuple(plan.test_id for plan in plans), assigned)


def keep_shard(config: pytest.Config, session: AlgoPerfSession, items: list[Any]) -> None:
    """Deselect the benchmark items of other shards, as ``-k`` deselects (reported as deselected)."""
    plan = shard_plan(session, [item.plan for item in items])
    if plan is None:
        return
    mine = set(plan.assigned)
    deselected = [item for item in items if item.name not in mine]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item.name in mine]


def header_line(session: AlgoPerfSession) -> str | None:
    if session.settings.shard is None:
        return None
    index, count = session.settings.shard
    return (
        f"algoperf: shard {index} of {count}: this session runs its part of the planned runs; merge the "
        "shards' results with python -m pytest_algoperf.merge"
    )


def shard_note(shard: tuple[int, int]) -> str:
    index, count = shard
    return (
        f"shard {index}/{count}: workload times, scores and the verdict over all runs come from merging the "
        f"{count} shards: python -m pytest_algoperf.merge SHARD_OUTPUT... --output MERGED"
    )


def session_record(session: AlgoPerfSession, plans: Sequence[PlannedRun]) -> dict[str, Any]:
    """What results.json records of the session's hardware and shard, for provenance and for the merge."""
    shard = shard_plan(session, plans)
    return {
        "workloads": list(session.workload_names),
        "hardware": session.hardware.to_json(),
        "shard": shard.to_json() if shard else None,
    }
