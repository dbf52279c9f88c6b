"""Resume a panel member run by run: what its folder records is kept, and only the missing runs train.

A member's first session writes ``<member>/results.json``; a later session of the same study that finds runs
missing (it was interrupted, or the study now asks for more trials) trains only those, the one that was
training when it was stopped included, in a folder of its own,
``<member>/resume-1``, ``resume-2``..., so no recorded result is overwritten. The study reads all of them as
one member (:func:`recorded_runs`).

The study loads this module into such a session as a pytest plugin (``-p pytest_algoperf.validity.resume``)
with ``--validity-recorded=FILE``, a JSON list of the ``[workload, study, trial]`` already recorded: those
benchmark tests are deselected, exactly, where ``--deselect`` would match node id prefixes (``trial1`` would
also drop ``trial10``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_algoperf.results import RunResult
from pytest_algoperf.score.logs import load_results_file
from pytest_algoperf.session import run_seed

RESULTS = "results.json"
RESUME_PREFIX = "resume-"
RunKey = tuple[str, int, int]  # (workload, study, trial)
# A run stopped by Ctrl-C, or by the study being stopped, ended for no reason of its algorithm's: it is not a
# result, and a resumed study trains it again. A run that raised or diverged is: AlgoPerf counts it missed.
NOT_A_RESULT = frozenset({"interrupted"})


def result_files(folder: Path) -> list[Path]:
    """The member's results files, its first session's first, then its resumed sessions' in order."""
    found = folder.glob(f"{RESUME_PREFIX}*/{RESULTS}")
    numbered = {p: p.parent.name.removeprefix(RESUME_PREFIX) for p in found}
    resumed = sorted((p for p, k in numbered.items() if k.isdigit()), key=lambda p: int(numbered[p]))
    first = folder / RESULTS
    return ([first] if first.is_file() else []) + resumed


def recorded_runs(folder: Path, session_seed: int | None = None) -> list[RunResult]:
    """Every run the member's folder records, once per (workload, study, trial), the first recorded kept; a
    run that was interrupted is not recorded (``NOT_A_RESULT``).

    With ``session_seed``, a run counts only if it trained with the seed the study plans for it
    (``run_seed``): a run from a study with another ``--seed`` is another study's.
    """
    runs: dict[RunKey, RunResult] = {}
    for path in result_files(folder):
        for run in load_results_file(path):
            planned_seed = None if session_seed is None else run_seed(session_seed, *run_key(run))
            if (planned_seed is not None and run.seed != planned_seed) or run.stop_reason in NOT_A_RESULT:
                continue
            runs.setdefault(run_key(run), run)
    return list(runs.values())


def run_key(run: RunResult) -> RunKey:
    return (run.workload, run.study, run.trial)


def next_resume_folder(folder: Path) -> Path:
    """``<member>/resume-K`` for the first K not taken."""
    k = 1
    while (folder / f"{RESUME_PREFIX}{k}").exists():
        k += 1
    return folder / f"{RESUME_PREFIX}{k}"


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--validity-recorded``: the runs this resumed session must not train again."""
    parser.addoption(
        "--validity-recorded",
        default=None,
        help="validity study: a JSON list of the [workload, study, trial] already recorded, to deselect",
    )


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the benchmark tests whose (workload, study, trial) the member has recorded. Runs last, after
    pytest-algoperf has put its tests in place."""
    path = config.getoption("validity_recorded")
    if not path:
        return
    recorded = {tuple(key) for key in json.loads(Path(path).read_text())}
    keep, drop = [], []
    for item in items:
        plan = getattr(item, "plan", None)
        key = None if plan is None else (plan.workload, plan.study, plan.trial)
        (drop if key in recorded else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
