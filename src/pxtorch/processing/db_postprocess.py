"""DB (Differentiable Binarization) post-processing: probability map -> text quads or polygons.

PaddleX ``DBPostProcess``: ``box_type="quad"`` (text detection) gives minimum-area rectangles,
``box_type="poly"`` (seal text detection) gives polygons that follow curved text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import pyclipper

from .geometry import min_area_box

__all__ = ["DBParams", "box_score_fast", "db_postprocess", "db_postprocess_poly", "unclip"]


@dataclass(frozen=True)
class DBParams:
    """DB post-processing settings; defaults are PaddleX's OCR pipeline values (``box_type="quad"``).

    ``box_type="poly"`` (seal text) makes :func:`db_postprocess` return polygons; it always scores
    with the polygon mask (``score_mode`` is ignored there, as in PaddleX).
    """

    thresh: float = 0.3
    box_thresh: float = 0.6
    unclip_ratio: float = 1.5
    max_candidates: int = 1000
    min_size: int = 3
    use_dilation: bool = False
    score_mode: str = "fast"
    box_type: str = "quad"

    def __post_init__(self) -> None:
        if self.box_type not in ("quad", "poly"):
            raise ValueError(f"box_type must be 'quad' or 'poly', got {self.box_type!r}")
        if self.score_mode not in ("fast", "slow"):
            raise ValueError(f"score_mode must be 'fast' or 'slow', got {self.score_mode!r}")
        for name in ("thresh", "box_thresh"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.unclip_ratio <= 0:
            raise ValueError(f"unclip_ratio must be > 0, got {self.unclip_ratio}")


def box_score_fast(prob: np.ndarray, box: np.ndarray) -> float:
    """Mean of ``prob`` ``[H, W]`` inside the polygon ``box`` ``[N, 2]`` (filled over its integer bounding box)."""
    h, w = prob.shape
    x_min = min(max(math.floor(box[:, 0].min()), 0), w - 1)
    x_max = min(max(math.ceil(box[:, 0].max()), 0), w - 1)
    y_min = min(max(math.floor(box[:, 1].min()), 0), h - 1)
    y_max = min(max(math.ceil(box[:, 1].max()), 0), h - 1)
    mask = np.zeros((y_max - y_min + 1, x_max - x_min + 1), dtype=np.uint8)
    shifted = box - np.array([x_min, y_min], dtype=box.dtype)
    cv2.fillPoly(mask, shifted.reshape(1, -1, 2).astype(np.int32), 1)
    return cv2.mean(prob[y_min : y_max + 1, x_min : x_max + 1], mask)[0]


def _box_score_slow(prob: np.ndarray, contour: np.ndarray) -> float:
    """Mean of ``prob`` inside the contour itself (``score_mode="slow"``)."""
    h, w = prob.shape
    pts = contour.reshape(-1, 2).copy()
    x_min, x_max = np.clip(pts[:, 0].min(), 0, w - 1), np.clip(pts[:, 0].max(), 0, w - 1)
    y_min, y_max = np.clip(pts[:, 1].min(), 0, h - 1), np.clip(pts[:, 1].max(), 0, h - 1)
    mask = np.zeros((y_max - y_min + 1, x_max - x_min + 1), dtype=np.uint8)
    pts -= np.array([x_min, y_min], dtype=pts.dtype)
    cv2.fillPoly(mask, pts.reshape(1, -1, 2).astype(np.int32), 1)
    return cv2.mean(prob[y_min : y_max + 1, x_min : x_max + 1], mask)[0]


def unclip(box: np.ndarray, unclip_ratio: float) -> np.ndarray:
    """Grow the polygon ``box`` ``[N, 2]`` by ``area * ratio / perimeter`` (pyclipper, round joins).

    Returns the expanded polygon's integer points ``[M, 2]``. When the offset splits into several
    paths, PaddleX keeps all their points if the paths have equal length and the first path otherwise;
    so does this function.
    """
    distance = cv2.contourArea(box) * unclip_ratio / cv2.arcLength(box, True)
    offset = pyclipper.PyclipperOffset()
    offset.AddPath(box, pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    paths = offset.Execute(distance)
    if not paths:
        return np.zeros((0, 2), dtype=np.int32)
    if len({len(p) for p in paths}) > 1:
        paths = paths[:1]
    return np.asarray(paths, dtype=np.int32).reshape(-1, 2)


def _scale_box(box: np.ndarray, scale_x: float, scale_y: float, dest_w: int, dest_h: int) -> np.ndarray:
    """Map detector-input coordinates to the source image: float32 multiply, round half to even, clip."""
    out = np.empty_like(box)
    out[:, 0] = np.clip(np.round(box[:, 0] * np.float32(scale_x)), 0, dest_w)
    out[:, 1] = np.clip(np.round(box[:, 1] * np.float32(scale_y)), 0, dest_h)
    return out


def db_postprocess(
    prob: np.ndarray, src_hw: tuple[int, int], params: DBParams = DBParams()
) -> tuple[np.ndarray, list[float]] | tuple[list[np.ndarray], list[float]]:
    """Text quads (or, with ``params.box_type == "poly"``, polygons: see :func:`db_postprocess_poly`)
    from one probability map.

    Args:
        prob: ``[H, W]`` float32 text probability at the detector's input resolution (unpadded).
        src_hw: ``(height, width)`` of the source image the boxes are mapped back to.
        params: thresholds (see :class:`DBParams`).

    Returns:
        ``(dt_polys, dt_scores)``: int16 ``[N, 4, 2]`` quads (TL, TR, BR, BL) in source pixels, in
        contour order, and their mean probabilities.
    """
    if params.box_type == "poly":
        return db_postprocess_poly(prob, src_hw, params)
    prob, contours = _contours(prob, params)
    height, width = prob.shape
    dest_h, dest_w = src_hw
    scale_x, scale_y = dest_w / width, dest_h / height
    boxes, scores = [], []
    for contour in contours[: params.max_candidates]:
        box, short_side = min_area_box(contour)
        if short_side < params.min_size:
            continue
        score = box_score_fast(prob, box) if params.score_mode == "fast" else _box_score_slow(prob, contour)
        if params.box_thresh > score:
            continue
        expanded = unclip(box, params.unclip_ratio)
        if len(expanded) == 0:
            continue
        box, short_side = min_area_box(expanded.reshape(-1, 1, 2))
        if short_side < params.min_size + 2:
            continue
        boxes.append(_scale_box(box, scale_x, scale_y, dest_w, dest_h).astype(np.int16))
        scores.append(score)
    polys = np.array(boxes, dtype=np.int16) if boxes else np.zeros((0, 4, 2), dtype=np.int16)
    return polys, scores


def _contours(prob: np.ndarray, params: DBParams) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """``prob`` as float32 ``[H, W]`` and the contours of its thresholded (optionally dilated) bitmap."""
    if prob.ndim != 2:
        raise ValueError(f"expected a [H, W] probability map, got shape {prob.shape}")
    prob = np.asarray(prob, dtype=np.float32)
    bitmap = (prob > params.thresh).astype(np.uint8)
    if params.use_dilation:
        bitmap = cv2.dilate(bitmap, np.ones((2, 2), dtype=np.uint8))
    contours, _ = cv2.findContours(bitmap * 255, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    return prob, contours


def _unclip_single(points: np.ndarray, unclip_ratio: float) -> np.ndarray | None:
    """The expanded polygon ``[M, 2]`` when the offset gives exactly one path, else ``None`` (PaddleX
    ``polygons_from_bitmap`` drops a polygon whose expansion splits or vanishes)."""
    distance = cv2.contourArea(points) * unclip_ratio / cv2.arcLength(points, True)
    offset = pyclipper.PyclipperOffset()
    offset.AddPath(points, pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    paths = offset.Execute(distance)
    if len(paths) != 1 or len(paths[0]) == 0:
        return None
    return np.asarray(paths[0], dtype=np.int32).reshape(-1, 2)


def db_postprocess_poly(
    prob: np.ndarray, src_hw: tuple[int, int], params: DBParams = DBParams(box_type="poly")
) -> tuple[list[np.ndarray], list[float]]:
    """Text polygons from one probability map (PaddleX ``DBPostProcess`` with ``box_type="poly"``).

    Each contour of the thresholded map is simplified with ``approxPolyDP`` (epsilon = 0.002 x its
    perimeter); polygons with fewer than 4 points are dropped, the rest scored by the mean probability
    inside them (``box_thresh``), grown by ``unclip_ratio`` (kept only when the offset is a single
    path) and dropped when the expanded polygon's minimum-area rectangle is thinner than
    ``min_size + 2``. Coordinates are mapped to the source image (round half to even, clipped to
    ``[0, W]``/``[0, H]``).

    Args:
        prob: ``[H, W]`` float32 text probability at the detector's input resolution (unpadded).
        src_hw: ``(height, width)`` of the source image.
        params: thresholds (``box_type`` is not consulted).

    Returns:
        ``(dt_polys, dt_scores)``: a list of int32 ``[K_i, 2]`` polygons (``K_i >= 4``) in contour
        order and their scores.
    """
    prob, contours = _contours(prob, params)
    height, width = prob.shape
    dest_h, dest_w = src_hw
    scale = np.array([dest_w / width, dest_h / height])
    limit = np.array([dest_w, dest_h])
    polys, scores = [], []
    for contour in contours[: params.max_candidates]:
        epsilon = 0.002 * cv2.arcLength(contour, True)
        points = cv2.approxPolyDP(contour, epsilon, True).reshape(-1, 2)
        if len(points) < 4:
            continue
        score = box_score_fast(prob, points)
        if params.box_thresh > score:
            continue
        expanded = _unclip_single(points, params.unclip_ratio)
        if expanded is None:
            continue
        _, short_side = min_area_box(expanded.reshape(-1, 1, 2))
        if short_side < params.min_size + 2:
            continue
        mapped = np.clip(np.round(expanded * scale), 0, limit)  # float64 multiply, as PaddleX
        polys.append(mapped.astype(np.int32))
        scores.append(score)
    return polys, scores
