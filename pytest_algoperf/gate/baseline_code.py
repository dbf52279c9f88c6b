"""``--algoperf-baseline-code``: the baseline's code, for the paired throughput measurement.

Either what ``--algoperf-submission`` accepts (a built-in name, a folder, a ``.py`` file), or ``git:REV``: the
candidate submission's own folder at git revision ``REV`` (``git:HEAD~1``, ``git:origin/main``), extracted
with ``git archive`` into a scratch folder, so helper modules and the search space beside the file come from
that revision too. Modules the submission imports from elsewhere (installed packages, the built-in baselines'
shared helpers) are today's.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from pytest_algoperf.submission import SubmissionError, SubmissionSource, resolve_submission

GIT_PREFIX = "git:"


def resolve_baseline_code(
    spec: str, candidate: SubmissionSource, cwd: Path, scratch: Path
) -> SubmissionSource:
    """The baseline's source for ``candidate``; ``SubmissionError`` says what is wrong and how to fix it."""
    if not spec.startswith(GIT_PREFIX):
        source = resolve_submission(spec, candidate.framework, cwd)
        return SubmissionSource(f"{source.name} (baseline code)", source.framework, source.path)
    revision = spec.removeprefix(GIT_PREFIX)
    folder = candidate.path.parent
    top = Path(_git(folder, "rev-parse", "--show-toplevel", spec=spec).decode().strip())
    relative = folder.resolve().relative_to(top.resolve())
    archive = _git(top, "archive", "--format=tar", revision, "--", relative.as_posix() or ".", spec=spec)
    target = scratch / f"{candidate.name}-{candidate.framework}-{_safe(revision)}"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    path = target / relative / candidate.path.name
    if not path.is_file():
        raise SubmissionError(
            f"--algoperf-baseline-code={spec}: {relative / candidate.path.name} is not in {revision}"
        )
    return SubmissionSource(f"{candidate.name}@{revision}", candidate.framework, path)


def _git(folder: Path, *args: str, spec: str) -> bytes:
    try:
        completed = subprocess.run(["git", *args], cwd=folder, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SubmissionError(f"--algoperf-baseline-code={spec}: cannot run git ({error})") from None
    if completed.returncode != 0:
        message = completed.stderr.decode(errors="replace").strip().splitlines()
        raise SubmissionError(
            f"--algoperf-baseline-code={spec}: git {args[0]} failed in {folder}: "
            f"{message[-1] if message else ''}; give a revision of the git repository that holds the "
            "submission, or a path to the baseline's code"
        )
    return completed.stdout


def _safe(revision: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in revision)
