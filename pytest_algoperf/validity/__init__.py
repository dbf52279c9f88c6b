"""Does the mini suite rank training algorithms as AlgoPerf does? The validity study.

``python -m pytest_algoperf.validity`` runs a panel of published algorithms (``panel``) under external
tuning, each in its own pytest session, scores them on one board per framework and prints the suite's
scores beside AlgoPerf's published ones with Kendall's tau and the pairs the two order differently
(``agreement``). ``python -m pytest_algoperf.validity.update_share`` measures, per workload, the share of a
training step that the optimizer's update takes.
"""
