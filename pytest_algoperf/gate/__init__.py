"""The regression gate: does a change make a submission slower to reach its targets?

Two kinds of regression, measured apart so that neither is confused with a busy machine:

- **algorithmic** (more steps to the target, or a miss): in step mode (``schedule``) a seed gives the same
  trajectory on any load, so steps are compared exactly (``verdicts``);
- **throughput** (slower steps): measured against the baseline's own code, interleaved in the same process
  (``paired``, ``baseline_code``), or else against stored times with the spread the baseline file recorded and
  the machine's load (``pytest_algoperf.load``) taken into account.

``baseline_file`` reads and writes the JSON baseline; the recorder applies ``verdicts.judge`` to every run at
the end of a session and fails the session on a regression.
"""
