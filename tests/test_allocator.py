"""Freed memory stays in the process, so a step does not fault its buffers in again
(``pytest_algoperf.allocator``). The policy is process-wide and cannot be undone, so each behaviour is
observed in a process of its own."""

from __future__ import annotations

import ctypes
import platform
import subprocess
import sys

import pytest
from tiny import BASE_ARGS, only_run, write_tiny_project

from pytest_algoperf import allocator

needs_glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the policy is glibc's mallopt")

# Page faults of a 48 MB block allocated, filled and freed 5 times after a first time (12,288 pages each; by
# default glibc maps a block over 32 MB anew each time). C's malloc, since numpy asks for huge pages.
REUSED_BLOCK_FAULTS = """
import ctypes, resource, sys
from pytest_algoperf.allocator import keep_freed_memory
if sys.argv[1] == "kept":
    assert keep_freed_memory()
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
def fill_and_free():
    block = libc.malloc(48 << 20)
    ctypes.memset(block, 1, 48 << 20)
    libc.free(block)
fill_and_free()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    fill_and_free()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def reused_block_faults(policy: str) -> int:
    completed = subprocess.run(
        [sys.executable, "-c", REUSED_BLOCK_FAULTS, policy], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    return int(completed.stdout)


@needs_glibc
def test_a_block_freed_and_allocated_again_is_faulted_in_once_when_memory_is_kept() -> None:
    pages = 5 * (48 << 20) // 4096
    assert reused_block_faults("system") > pages // 2
    assert reused_block_faults("kept") < pages // 20


@needs_glibc
def test_a_benchmark_session_keeps_freed_memory_says_so_and_records_it(pytester: pytest.Pytester) -> None:
    write_tiny_project(pytester)
    result = pytester.runpytest_subprocess(
        *BASE_ARGS, "--algoperf-submission=tinysgd", "--algoperf-workloads=tiny"
    )
    result.stdout.fnmatch_lines(["algoperf: * CPU threads per process; freed memory kept (glibc malloc); *"])
    assert only_run(pytester)["freed_memory_kept"] is True


def test_other_c_libraries_are_left_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    """musl and macOS have a ``mallopt`` (musl's does nothing) but not glibc's version query."""

    class OtherLibc:
        mallopt = staticmethod(lambda parameter, value: 1)

    monkeypatch.setattr(ctypes, "CDLL", lambda name: OtherLibc())
    monkeypatch.setattr(allocator, "_kept", False)  # whatever sessions run in this process set before
    assert allocator.keep_freed_memory() is False


def test_a_refused_setting_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int]] = []

    def mallopt(parameter: int, value: int) -> int:
        calls.append((parameter, value))
        return 0 if parameter == allocator.M_MMAP_MAX else 1

    monkeypatch.setattr(allocator, "_glibc_mallopt", lambda: mallopt)
    monkeypatch.setattr(allocator, "_kept", allocator.freed_memory_kept())  # restored afterwards
    assert allocator.keep_freed_memory() is False
    assert calls == list(allocator.KEPT_MEMORY_POLICY)
