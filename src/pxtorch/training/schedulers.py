"""Learning-rate schedules used by PaddleOCR's configs (cosine decay after a linear warm-up)."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

__all__ = ["warmup_cosine"]


def warmup_cosine(optimizer: Optimizer, total_steps: int, warmup_steps: int = 0, min_ratio: float = 0.0) -> LambdaLR:
    """Per-step schedule: linear warm-up from 0 over ``warmup_steps``, then cosine decay to ``min_ratio * lr``.

    PaddleOCR's ``Cosine`` learning rate with ``warmup_epoch`` (stepped per iteration).
    """
    total_steps = max(1, int(total_steps))
    warmup_steps = max(0, min(int(warmup_steps), total_steps - 1))

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
