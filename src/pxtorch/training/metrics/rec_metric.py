"""Recognition and orientation metrics (PaddleOCR ``ppocr/metrics/rec_metric.py`` / ``cls_metric.py``).

``RecMetric``: per sample, optionally drop spaces (``ignore_space``, default on) and keep only lowercased
ASCII letters and digits (``is_filter``); exact match counts as correct; the normalised edit distance
is rapidfuzz's ``Levenshtein.normalized_distance`` = ``distance / max(len(pred), len(target))`` (0 for
two empty strings). ``acc = correct / (total + 1e-5)``, ``norm_edit_dis = 1 - sum(nd) / (total + 1e-5)``.
``ClsMetric``: ``acc = correct / (total + 1e-5)`` (reported here as ``top1``).
"""

from __future__ import annotations

import string

import numpy as np
import torch
from torchmetrics import Metric

__all__ = ["ClsMetric", "RecMetric", "edit_distance", "normalized_edit_distance"]

_EPS = 1e-5
_KEEP = frozenset(string.digits + string.ascii_letters)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (unit insert/delete/substitute costs), row-by-row numpy DP."""
    if a == b:
        return 0
    if not a or not b:
        return max(len(a), len(b))
    if len(a) < len(b):
        a, b = b, a
    bb = np.array([ord(c) for c in b], dtype=np.int64)
    prev = np.arange(len(b) + 1, dtype=np.int64)
    for i, ca in enumerate(a, 1):
        # substitution/match and deletion need only the previous row; insertion is a running min
        cur = np.empty_like(prev)
        cur[0] = i
        cur[1:] = np.minimum(prev[:-1] + (bb != ord(ca)), prev[1:] + 1)
        # insertions: cur[j] = min(cur[j], cur[j-1] + 1) == min_k (cur[k] + j - k)
        idx = np.arange(len(cur))
        cur = np.minimum.accumulate(cur - idx) + idx
        prev = cur
    return int(prev[-1])


def normalized_edit_distance(pred: str, target: str) -> float:
    """``edit_distance / max(len(pred), len(target))``; 0.0 for two empty strings."""
    longest = max(len(pred), len(target))
    return edit_distance(pred, target) / longest if longest else 0.0


class RecMetric(Metric):
    """Sequence accuracy and ``1 - mean normalised edit distance`` over text predictions.

    Args:
        ignore_space: remove ``" "`` from both strings first (PaddleOCR default True).
        is_filter: keep only ASCII letters and digits, lowercased (PaddleOCR default False).
    """

    full_state_update = False
    higher_is_better = True

    correct: torch.Tensor
    total: torch.Tensor
    norm_edit_dis: torch.Tensor

    def __init__(self, ignore_space: bool = True, is_filter: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.ignore_space = ignore_space
        self.is_filter = is_filter
        self.add_state("correct", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("norm_edit_dis", default=torch.tensor(0.0), dist_reduce_fx="sum")

    def _normalize(self, text: str) -> str:
        if self.ignore_space:
            text = text.replace(" ", "")
        if self.is_filter:
            text = "".join(c for c in text if c in _KEEP).lower()
        return text

    def update(self, preds: list[str], targets: list[str]) -> None:
        """Add a batch of predicted and ground-truth strings."""
        if len(preds) != len(targets):
            raise ValueError(f"{len(preds)} predictions for {len(targets)} targets")
        correct, ned = 0, 0.0
        for pred, target in zip(preds, targets, strict=True):
            pred, target = self._normalize(pred), self._normalize(target)
            ned += normalized_edit_distance(pred, target)
            correct += pred == target
        self.correct = self.correct + correct
        self.total = self.total + len(preds)
        self.norm_edit_dis = self.norm_edit_dis + ned

    def compute(self) -> dict[str, torch.Tensor]:
        """``acc`` and ``norm_edit_dis`` (PaddleOCR's eps 1e-5 in both denominators)."""
        total = self.total.float() + _EPS
        return {"acc": self.correct.float() / total, "norm_edit_dis": 1.0 - self.norm_edit_dis / total}


class ClsMetric(Metric):
    """Top-1 accuracy of class predictions (PaddleOCR ``ClsMetric`` ``acc``)."""

    full_state_update = False
    higher_is_better = True

    correct: torch.Tensor
    total: torch.Tensor

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("correct", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, targets: torch.Tensor) -> None:
        """``preds [B]`` predicted class ids (or ``[B, C]`` scores, arg-maxed), ``targets [B]``."""
        if preds.ndim == 2:
            preds = preds.argmax(-1)
        if preds.shape != targets.shape:
            raise ValueError(f"preds {tuple(preds.shape)} and targets {tuple(targets.shape)} differ")
        self.correct = self.correct + (preds == targets).sum()
        self.total = self.total + targets.numel()

    def compute(self) -> dict[str, torch.Tensor]:
        """``{"top1": correct / (total + 1e-5)}``."""
        return {"top1": self.correct.float() / (self.total.float() + _EPS)}
