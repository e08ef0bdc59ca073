"""Text-detection metric: PaddleOCR's ``DetMetric`` (``DetectionIoUEvaluator``, ICDAR-2015 IoU protocol).

Per image: ground-truth and detected polygons that are not valid simple polygons are dropped; detections
covering a don't-care ground truth by more than ``area_precision_constraint`` of their own area are
don't-care too; then ground truths and detections are matched one to one, greedily in order, when their
IoU is above ``iou_constraint``. Precision, recall and hmean are computed from the sums over the data set.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from shapely.errors import ShapelyError
from shapely.geometry import Polygon
from torchmetrics import Metric

__all__ = ["DetMetric", "match_detections"]


def _valid_polygon(points: np.ndarray) -> Polygon | None:
    """A shapely polygon, or ``None`` where PaddleOCR skips it (not valid / not simple; also unbuildable)."""
    try:
        polygon = Polygon(np.asarray(points, dtype=np.float64).reshape(-1, 2))
    except (ValueError, ShapelyError):  # fewer than 3 points: PaddleOCR would raise here
        return None
    if not polygon.is_valid or not polygon.is_simple:
        return None
    return polygon


def match_detections(
    pred_polys: Sequence[np.ndarray],
    gt_polys: Sequence[np.ndarray],
    gt_ignore: Sequence[bool],
    iou_constraint: float = 0.5,
    area_precision_constraint: float = 0.5,
) -> tuple[int, int, int]:
    """Match one image's detections to its ground truth as ``DetectionIoUEvaluator.evaluate_image``.

    Args:
        pred_polys: detected ``(K, 2)`` polygons.
        gt_polys: ground-truth ``(K, 2)`` polygons.
        gt_ignore: don't-care flag per ground truth.
        iou_constraint: a pair matches when IoU ``>`` this.
        area_precision_constraint: a detection is don't-care when its intersection with a don't-care
            ground truth is ``>`` this fraction of its area.
    Returns:
        ``(num_matched, num_gt_care, num_det_care)``.
    """
    if len(gt_polys) != len(gt_ignore):
        raise ValueError(f"got {len(gt_polys)} ground-truth polygons but {len(gt_ignore)} ignore flags")
    gts: list[Polygon] = []
    gt_dont_care: set[int] = set()
    for points, tag in zip(gt_polys, gt_ignore, strict=True):
        polygon = _valid_polygon(points)
        if polygon is None:
            continue
        if tag:
            gt_dont_care.add(len(gts))
        gts.append(polygon)

    dets: list[Polygon] = []
    det_dont_care: set[int] = set()
    for points in pred_polys:
        polygon = _valid_polygon(points)
        if polygon is None:
            continue
        for g in sorted(gt_dont_care):
            area = polygon.area
            covered = 0.0 if area == 0 else gts[g].intersection(polygon).area / area
            if covered > area_precision_constraint:
                det_dont_care.add(len(dets))
                break
        dets.append(polygon)

    matched = 0
    if gts and dets:
        gt_taken = [False] * len(gts)
        det_taken = [False] * len(dets)
        for gi, g in enumerate(gts):
            if gi in gt_dont_care:
                continue
            for di, d in enumerate(dets):
                if gt_taken[gi] or det_taken[di] or di in det_dont_care:
                    continue
                inter = d.intersection(g).area
                union = d.union(g).area
                iou = inter / union if union > 0 else 0.0
                if iou > iou_constraint:
                    gt_taken[gi] = det_taken[di] = True
                    matched += 1
    return matched, len(gts) - len(gt_dont_care), len(dets) - len(det_dont_care)


class DetMetric(Metric):
    """Detection precision / recall / hmean over a data set (PaddleOCR ``DetMetric``), DDP-summed.

    Args:
        iou_constraint, area_precision_constraint: see :func:`match_detections`.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    matched: torch.Tensor
    gt_care: torch.Tensor
    det_care: torch.Tensor

    def __init__(self, iou_constraint: float = 0.5, area_precision_constraint: float = 0.5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.iou_constraint = iou_constraint
        self.area_precision_constraint = area_precision_constraint
        for name in ("matched", "gt_care", "det_care"):
            self.add_state(name, default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(
        self,
        preds: Sequence[Sequence[np.ndarray]],
        gts: Sequence[Sequence[np.ndarray]],
        ignores: Sequence[Sequence[bool]],
    ) -> None:
        """Add a batch: per image, the detected polygons, the ground-truth polygons and their ignore flags."""
        if not len(preds) == len(gts) == len(ignores):
            raise ValueError(f"got {len(preds)} predictions, {len(gts)} ground truths, {len(ignores)} ignore lists")
        matched = gt_care = det_care = 0
        for pred, gt, ignore in zip(preds, gts, ignores, strict=True):
            m, g, d = match_detections(pred, gt, ignore, self.iou_constraint, self.area_precision_constraint)
            matched, gt_care, det_care = matched + m, gt_care + g, det_care + d
        self.matched = self.matched + matched
        self.gt_care = self.gt_care + gt_care
        self.det_care = self.det_care + det_care

    def compute(self) -> dict[str, torch.Tensor]:
        """``precision``, ``recall``, ``hmean`` (float32 scalars; 0 where a denominator is 0)."""
        matched = float(self.matched)
        gt_care = float(self.gt_care)
        det_care = float(self.det_care)
        recall = matched / gt_care if gt_care else 0.0
        precision = matched / det_care if det_care else 0.0
        hmean = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        values = {"precision": precision, "recall": recall, "hmean": hmean}
        return {k: torch.tensor(v, dtype=torch.float32, device=self.matched.device) for k, v in values.items()}
