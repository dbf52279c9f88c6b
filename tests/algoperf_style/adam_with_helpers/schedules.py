"""A module beside the submission, imported relatively (``from .schedules import ...``)."""

import math


def warmup_cosine(step_hint: int, warmup_factor: float):
    warmup_steps = max(int(warmup_factor * step_hint), 1)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / warmup_steps
        return 0.5 * (1.0 + math.cos(math.pi * min(step / step_hint, 1.0)))

    return factor
