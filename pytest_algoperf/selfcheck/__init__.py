"""``python -m pytest_algoperf.selfcheck``: a benchmark of the harness itself, not a unit test.

A benchmark harness must not be what it measures. The self-check measures, per workload and framework, what
the harness adds to a submission's own time and what else a session spends, each as a ratio measured in one
run (so a shared, noisy machine moves both sides alike), and prints a table and writes it as JSON:

- ``overhead``: submission time per step under ``run_benchmark`` against a bare loop that calls the same
  ``data_selection`` and ``update_params`` with one key and synchronises once at the end, in alternating
  blocks of the same steps (ABBA), as a median ratio (``measures``);
- ``data_selection share``: the time ``data_selection`` alone takes, as a share of a bare step;
- ``JAX / PyTorch``: the bare step time of JAX over PyTorch's, on the same workload;
- ``eval period / 10``: submission time per step when evals come ten times as often, over the default's:
  evaluation is untimed, so anything above 1 is eval work leaking into the clock (a cache evicted, a
  recompilation, a collection);
- ``repeats``: the coefficient of variation of time to target over same-seed repeats, whether their steps to
  target are identical, and eval time as a share of wall time (``repeats``);
- ``suite``: the wall time of a session of the base suite run serially over the same session with
  ``-n 2`` (``suite``).

The in-process measures run on one CPU (``--no-pin`` to leave them on all), as the budgets were calibrated;
the suite's sessions get every CPU. Each JAX function compiles once per self-check.
"""
