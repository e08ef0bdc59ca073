"""Box geometry shared by detection post-processing, cropping and results (numpy in, numpy out)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ["min_area_box", "points_to_boxes"]


def min_area_box(points: np.ndarray) -> tuple[np.ndarray, float]:
    """The minimum-area rectangle around ``points`` ``[N, 2]`` (or ``[N, 1, 2]``), int32 or float32.

    Returns:
        ``(box, short_side)``: ``box`` float32 ``[4, 2]`` ordered TL, TR, BR, BL the way PaddleOCR's
        ``get_mini_boxes`` orders them (corners sorted by x, then each pair by y), and the rectangle's
        shorter side length.
    """
    rect = cv2.minAreaRect(points)
    corners = sorted(cv2.boxPoints(rect), key=lambda p: p[0])  # stable sort by x only, as PaddleOCR
    left_top, left_bottom = (0, 1) if corners[1][1] > corners[0][1] else (1, 0)
    right_top, right_bottom = (2, 3) if corners[3][1] > corners[2][1] else (3, 2)
    box = np.array(
        [corners[left_top], corners[right_top], corners[right_bottom], corners[left_bottom]], dtype=np.float32
    )
    return box, float(min(rect[1]))


def points_to_boxes(polys: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Axis-aligned ``[x_min, y_min, x_max, y_max]`` of each polygon; int16 ``[N, 4]`` (PaddleX ``rec_boxes``)."""
    if len(polys) == 0:
        return np.zeros((0, 4), dtype=np.int16)
    out = np.empty((len(polys), 4), dtype=np.int16)
    for i, poly in enumerate(polys):
        pts = np.asarray(poly).reshape(-1, 2)
        out[i] = (pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max())
    return out
