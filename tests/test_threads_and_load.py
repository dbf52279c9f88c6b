"""What a run may use and what it competes with: thread counts bounded by the CPU affinity mask and the
cgroup quota, and the load other processes put on the machine while a run trains."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from tiny import conftest_source, write_submission

from pytest_algoperf.load import CpuSample, LoadReport, load_between, sample
from pytest_algoperf.threads import allowed_cpus, cgroup_cpu_quota, choose_threads, set_affinity, worker_cpus


@pytest.mark.parametrize(
    ("files", "quota"),
    [
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),
    ],
    ids=["v2-limited", "v2-unlimited", "v1-limited", "v1-unlimited", "no-cgroup"],
)
def test_the_cgroup_cpu_quota_is_read_from_cgroup_v2_or_v1(
    tmp_path: Path, files: dict[str, str], quota: float | None
) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cgroup_cpu_quota(tmp_path) == quota


def test_a_quota_of_one_and_a_half_cpus_allows_one_thread(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert allowed_cpus(tmp_path) == 1


def test_threads_never_exceed_the_allowed_cpus_and_are_shared_between_workers() -> None:
    assert choose_threads(None, workers=1, cpu_count=8) == 8
    assert choose_threads(None, workers=3, cpu_count=8) == 2
    assert choose_threads(None, workers=16, cpu_count=8) == 1
    assert choose_threads(4, workers=1, cpu_count=2) == 2
    assert choose_threads(1, workers=1, cpu_count=2) == 1


def test_each_worker_gets_its_own_run_of_the_allowed_cpus() -> None:
    assert [worker_cpus(k, threads=1, allowed={3, 1}) for k in range(2)] == [[1], [3]]
    assert [worker_cpus(k, threads=2, allowed=range(4)) for k in range(2)] == [[0, 1], [2, 3]]
    assert worker_cpus(2, threads=1, allowed={0, 1}) == []  # no CPU left: the worker is not pinned


def test_set_affinity_moves_every_thread_of_the_process_not_only_the_caller() -> None:
    """A thread started earlier (as XLA's pools are) follows; the test gives every CPU back after."""
    allowed = os.sched_getaffinity(0)
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    thread.start()
    try:
        set_affinity({min(allowed)})
        assert os.sched_getaffinity(thread.native_id) == os.sched_getaffinity(0) == {min(allowed)}
    finally:
        set_affinity(allowed)
        release.set()
        thread.join()
    assert os.sched_getaffinity(0) == allowed


def test_the_affinity_mask_bounds_the_allowed_cpus() -> None:
    """As ``taskset -c 0`` does: a process pinned to one CPU may use one thread."""
    script = "import os; os.sched_setaffinity(0, {0}); from pytest_algoperf.threads import allowed_cpus; "
    script += "print(allowed_cpus())"
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert completed.stdout.strip() == "1", completed.stderr


def test_a_session_pinned_to_one_cpu_uses_one_thread_by_default(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makeconftest("import os\nos.sched_setaffinity(0, {0})\n" + conftest_source())
    write_submission(pytester.path)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--algoperf-submission=tinysgd",
        "--algoperf-workloads=tiny",
        "--collect-only",
    )
    result.stdout.fnmatch_lines(["algoperf: 1 CPU threads per process; *"])


# ---- load ----------------------------------------------------------------------------------------------


def cpu_sample(wall: float, busy: float, own: float, steal: float = 0.0) -> CpuSample:
    return CpuSample(wall, busy, steal, total=2 * wall, own=own, loadavg=1.0)


@pytest.mark.parametrize(
    ("busy", "own", "steal", "contended"),
    [(10.0, 10.0, 0.0, False), (12.0, 10.0, 0.0, False), (13.0, 10.0, 0.0, True), (10.0, 10.0, 0.5, True)],
    ids=["alone", "a-fifth-cpu", "a-third-cpu", "stolen"],
)
def test_other_processes_cpu_use_and_steal_mark_a_run_contended(
    busy: float, own: float, steal: float, contended: bool
) -> None:
    """Over 10 s on 2 CPUs: what others used is the machine's busy time minus this process's own."""
    report = load_between(cpu_sample(0, 0, 0), cpu_sample(10, busy, own, steal), cpu_count=2)
    assert report.other_cpus == pytest.approx((busy - own) / 10)
    assert report.contended is contended


def test_on_a_big_machine_a_tenth_of_the_cpus_is_the_contention_threshold() -> None:
    start = cpu_sample(0, 0, 0)
    assert not load_between(start, cpu_sample(10, 30.0, 0.0), cpu_count=64).contended  # 3 of 64 CPUs
    assert load_between(start, cpu_sample(10, 70.0, 0.0), cpu_count=64).contended  # 7 of 64


def test_without_proc_the_load_is_unknown_and_never_contended(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    report = load_between(sample(missing, missing), sample(missing, missing))
    assert (report.other_cpus, report.contended) == (None, False)
    assert report.describe() == "load unknown (no /proc)"


def test_a_sample_reads_proc_stat_and_loadavg(tmp_path: Path) -> None:
    (tmp_path / "stat").write_text("cpu  100 0 50 1000 10 5 5 20 0 0\ncpu0 1 2 3\n")
    (tmp_path / "loadavg").write_text("1.50 1.20 1.00 2/300 1234\n")
    reading = sample(tmp_path / "stat", tmp_path / "loadavg")
    assert (reading.busy, reading.steal, reading.total) == (1.6, 0.2, 11.9)  # at 100 ticks a second
    assert reading.loadavg == 1.5
    report = LoadReport.from_json(load_between(reading, reading).to_json())
    assert report is not None and report.loadavg_start == 1.5


def test_a_process_spinning_beside_a_run_is_seen_as_contention() -> None:
    spin = "import time\nend = time.time() + 1.5\nwhile time.time() < end: pass\n"
    start = sample()
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(spin)])
    child.wait(timeout=60)
    time.sleep(0.1)
    report = load_between(start, sample())
    assert report.other_cpus is not None and report.other_cpus >= 0.5
    assert report.contended
