"""Runs that cannot wedge a session: a hanging step is stopped and fails only its own test, a submission's
exception is shown with the submission's frames, and Ctrl-C keeps every finished run."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from tiny import BASE_ARGS, TINY_SUBMISSION, read_results, run_tiny, write_submission, write_tiny_project

HANG_AT_STEP_3 = "import threading\n" + TINY_SUBMISSION.replace(
    "    model = current_param_container\n",
    "    if global_step == 3:\n        threading.Event().wait()  # a deadlock\n"
    "    model = current_param_container\n",
    1,
)


def test_a_hanging_step_fails_its_test_after_the_hang_limit_and_the_session_goes_on(
    pytester: pytest.Pytester,
) -> None:
    write_tiny_project(pytester)
    write_submission(pytester.path, "hangs", source=HANG_AT_STEP_3)
    result = run_tiny(
        pytester, "--algoperf-submission=tinysgd", "--algoperf-hang-timeout=1", submission="hangs"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*data_selection/update_params did not return within the hang limit of 1 s (a deadlock or an*"]
    )
    runs = {run["submission"]: run for run in read_results(pytester)["runs"]}
    assert runs["hangs"]["stop_reason"] == "error" and runs["hangs"]["error"].startswith("StepHangError")
    assert [e["global_step"] for e in runs["hangs"]["evals"]] == [1, 2, 3]  # evals before the hang are kept
    assert runs["tinysgd"]["reached"] is True


def test_a_hang_that_python_cannot_interrupt_ends_the_process_with_every_threads_stack(tmp_path) -> None:
    """Blocked in code that never returns to the interpreter, a step is ended by faulthandler after the
    limit plus the grace period: under pytest-xdist that is one crashed worker, which fails only its test."""
    script = textwrap.dedent(
        """
        import signal, time
        from pytest_algoperf.watchdog import StepWatchdog

        watchdog = StepWatchdog(0.5, grace_sec=0.5)
        with watchdog.running():
            watchdog.begin("update_params")
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})  # as if stuck inside C code
            time.sleep(60)
        """
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=50)
    assert completed.returncode == 1
    assert "Timeout" in completed.stderr and "time.sleep" not in completed.stdout
    assert "most recent call first" in completed.stderr


def test_the_watchdog_stays_off_when_another_tool_holds_sigalrm() -> None:
    script = textwrap.dedent(
        """
        import signal
        from pytest_algoperf.watchdog import StepWatchdog

        signal.signal(signal.SIGALRM, lambda *args: None)
        print(StepWatchdog(1.0).reason_off)
        """
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=50)
    assert completed.stdout.strip() == "SIGALRM is in use by another tool (pytest-timeout's signal method?)"


def test_an_exception_in_submission_code_is_shown_with_the_submissions_frames_only(
    pytester: pytest.Pytester,
) -> None:
    write_tiny_project(pytester)
    write_submission(pytester.path, "broken", raise_at_step=2)
    result = run_tiny(pytester, submission="broken")
    result.assert_outcomes(failed=1)
    lines = result.stdout.str().split("= FAILURES =", 1)[1].splitlines()[1:]
    failure = lines[: next(i for i, line in enumerate(lines) if line.startswith("====="))]
    assert failure[1:] == [
        "broken/pytorch.py:36: in update_params",
        '    raise RuntimeError(f"tinysgd fails on purpose at step {global_step}")',
        "E   RuntimeError: tinysgd fails on purpose at step 2",
        "E   raised by update_params() of submission 'broken' at step 2",
    ]


# Ctrl-C at step 5. The default handler is put back first: a shell that starts a job in the background (`make
# test &`) makes it ignore SIGINT, and its children, this session among them, inherit that.
INTERRUPT_AT_STEP_5 = "import os, signal\n" + TINY_SUBMISSION.replace(
    "    model = current_param_container\n",
    "    if global_step == 5:\n"
    "        signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "        os.kill(os.getpid(), signal.SIGINT)\n"
    "    model = current_param_container\n",
    1,
)


def test_ctrl_c_keeps_every_finished_run_and_the_interrupted_ones_evals(pytester: pytest.Pytester) -> None:
    write_tiny_project(pytester)
    write_submission(pytester.path, "interrupted", source=INTERRUPT_AT_STEP_5)
    write_submission(pytester.path, "later")
    submissions = [f"--algoperf-submission={name}" for name in ("tinysgd", "interrupted", "later")]
    result = pytester.runpytest_subprocess(*BASE_ARGS, "--algoperf-workloads=tiny", *submissions)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    runs = json.loads((pytester.path / "out" / "results.json").read_text())["runs"]
    assert [(run["submission"], run["stop_reason"]) for run in runs] == [
        ("tinysgd", "targets reached"),
        ("interrupted", "interrupted"),
    ]
    assert [e["global_step"] for e in runs[1]["evals"]] == [1, 2, 3, 4, 5]
