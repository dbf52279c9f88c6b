"""AlgoPerf's scoring rules in one place, one module per step (ALGOPERF.md sections 4 and 5).

- ``search_space`` and ``tuning``: which hyperparameters each (study, trial) gets under a tuning ruleset;
- ``versions``: what each AlgoPerf version fixed (targets, variants, held-out draw, budgets, studies);
- ``logs``: reading logs, ours and AlgoPerf's, into runs;
- ``trials``: choosing each study's best trial, and each workload's time (median over studies);
- ``profiles``: the 4x cut-off, ratios, performance profiles and benchmark scores, speedups;
- ``boards``: which submissions are compared on which workloads (the plugin's boards, AlgoPerf's boards);
- ``command``: ``python -m pytest_algoperf.score``.
"""
