"""Keep freed memory in the process, so that a step's time does not depend on what the process ran before.

glibc's ``malloc`` hands large freed blocks back to the kernel: blocks over a threshold (which adapts to
what the process has freed) get mappings of their own, a heap's free top is trimmed, and a thread's arena
deletes heaps that fall empty. A training step allocates and frees tens of MB of activations, so it may
fault all their pages in again, step after step (about 10,000 pages a step on wmt_mini in JAX). Whether it
does depends on the process's history and on which arena XLA's thread took, so the same point stepped at
33 ms in one session and at 57 ms in another (VALIDITY.md, "Freed memory kept").

The policy: large blocks come from the heaps, heaps are never trimmed, and a thread's heap stays while less
than 64 MB of it is free. A step then faults in a few hundred pages. Memory one workload frees is reused by
the next, so a process stays near its largest workload's peak. The arenas are left alone: one arena for all
threads made steps that did not fault x1.15 slower (ogbg_mini in JAX). The settings are read at every
allocation, so they hold from when they are set: at configure time in a session, at the start of each
command that trains in its own process.
"""

from __future__ import annotations

import ctypes

# mallopt(3) parameters of glibc's malloc.h.
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_MAX = -4
# mallopt takes an int: the largest trim threshold it can be given.
NEVER_TRIM = 2**31 - 1
# A thread's arena deletes a heap (64 MB at most) only when more than this pad would stay free.
HEAP_PAD = 64 << 20

KEPT_MEMORY_POLICY = ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, NEVER_TRIM), (M_TOP_PAD, HEAP_PAD))

_kept = False


def freed_memory_kept() -> bool:
    """Whether this process applied the policy (each run records it: runs before it stepped slower)."""
    return _kept


def keep_freed_memory() -> bool:
    """Apply the policy to this process's ``malloc`` (every setting is tried); False where glibc refused one,
    or where the C library is not glibc (macOS, musl, Windows), whose allocators are left as they are."""
    global _kept
    mallopt = _glibc_mallopt()
    if mallopt is not None:
        _kept = all([mallopt(parameter, value) == 1 for parameter, value in KEPT_MEMORY_POLICY])
    return _kept


def _glibc_mallopt() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    """glibc's ``mallopt``, or None: musl has a ``mallopt`` that does nothing, so glibc is asked by name."""
    try:
        libc = ctypes.CDLL(None)  # the symbols this process has loaded, its C library's among them
        libc.gnu_get_libc_version  # noqa: B018 (glibc's alone)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):  # TypeError: Windows has no process-wide handle
        return None
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt
