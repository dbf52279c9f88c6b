"""The hardware a session runs on: budgets per hardware profile, and one accelerator per xdist worker.

AlgoPerf fixes the hardware and gives each workload a budget for it. Here targets describe quality and are
shared; budgets, eval periods and the calibrated step rate belong to a *hardware profile* (``profiles``),
which a session picks by its device (CPU thread count, GPU model and count). ``gpus`` finds the GPUs without
importing a framework and gives each pytest-xdist worker its own; ``derive`` makes a quick profile for new
hardware from the baseline's step rate there.
"""
