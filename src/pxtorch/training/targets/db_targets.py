"""DB (Differentiable Binarization) training targets: PaddleOCR's ``MakeShrinkMap`` and ``MakeBorderMap``.

Polygons are float ``(K, 2)`` arrays (``K >= 4``, ``(x, y)`` in pixels of the ``height x width`` image).
Both maps use the offset distance ``D = A (1 - r^2) / L`` (``A``: polygon area, ``L``: perimeter,
``r``: ``shrink_ratio``) with pyclipper's round-joined offset, as PaddleOCR does.

PaddleOCR's training config runs ``MakeBorderMap`` *before* ``MakeShrinkMap``: the threshold map sees the
caller's ignore flags and unclipped polygons, while ``MakeShrinkMap`` clips polygons to the image and also
ignores too-small / degenerate ones for its own map. :func:`make_db_targets` keeps that order.

Note: PaddleOCR's ``MakeShrinkMap``/``MakeBorderMap`` raise ``shrink_ratio`` by ``0.2 * epoch / total_epoch``
when given both; see :func:`scheduled_shrink_ratio`.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import pyclipper
from shapely.geometry import Polygon

__all__ = ["make_border_map", "make_db_targets", "make_shrink_map", "scheduled_shrink_ratio"]


def scheduled_shrink_ratio(shrink_ratio: float, epoch: int, total_epoch: int) -> float:
    """PaddleOCR's epoch schedule for ``shrink_ratio``: ``shrink_ratio + 0.2 * epoch / total_epoch``.

    PaddleOCR applies it when the dataset passes ``epoch`` to the map makers. ``tools/train.py`` builds
    the train loader once with ``seed`` (default 1024) as that "epoch" unless the dataset needs a reset
    every epoch, so with the stock config (``total_epoch: 500``) the effective ratio is
    ``0.4 + 0.2 * 1024 / 500 = 0.8096`` for the whole run.
    """
    return float(shrink_ratio) + 0.2 * float(epoch) / float(total_epoch)


def _offset(poly: np.ndarray, distance: float) -> list[np.ndarray]:
    """pyclipper round-joined offset of a closed polygon (positive grows, negative shrinks).

    pyclipper works on integers: float input coordinates are truncated, as in PaddleOCR.
    Returns ``(M, 2)`` int64 arrays, one per resulting polygon (possibly none).
    """
    offsetter = pyclipper.PyclipperOffset()
    offsetter.AddPath([tuple(p) for p in poly.tolist()], pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    return [np.asarray(path, dtype=np.int64).reshape(-1, 2) for path in offsetter.Execute(distance)]


def _signed_area_paddle(poly: np.ndarray) -> float:
    """``MakeShrinkMap.polygon_area``: half the sum of ``x_i * y_{i-1} - y_i * x_{i-1}``.

    This is the negated shoelace area: positive for polygons that are clockwise in (x right, y up) axes.
    """
    prev = np.roll(poly, 1, axis=0)
    return float(np.sum(poly[:, 0] * prev[:, 1] - poly[:, 1] * prev[:, 0]) / 2.0)


def _fill(canvas: np.ndarray, poly: np.ndarray, value: float) -> None:
    """``cv2.fillPoly`` with the polygon's coordinates cast to int32 (truncation, as PaddleOCR)."""
    cv2.fillPoly(canvas, [np.asarray(poly).astype(np.int32).reshape(-1, 2)], value)


def make_shrink_map(
    polys: Sequence[np.ndarray],
    ignore: Sequence[bool],
    height: int,
    width: int,
    shrink_ratio: float = 0.4,
    min_text_size: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """PaddleOCR ``MakeShrinkMap``: the shrunk text kernels and the loss mask.

    Each polygon is clipped to the image; polygons with ``|area| < 1`` are ignored and clockwise ones
    (PaddleOCR's sign convention) are reversed. Ignored polygons and those whose clipped bounding box
    has a side ``< min_text_size`` are filled with 0 in the mask (and count as ignored). The others are
    shrunk by ``D = A (1 - r^2) / L`` for ``r`` in ``np.arange(shrink_ratio, 1, shrink_ratio)``, stopping
    at the first ``r`` that yields exactly one polygon; if the last try yields nothing the polygon is
    masked out, otherwise every resulting piece is filled with 1 in the map.

    The input ``polys`` / ``ignore`` are not modified.

    Returns:
        ``(shrink_map, shrink_mask)``: float32 ``[height, width]`` (map 1 inside kernels, mask 0 on ignored text).
    """
    if len(polys) != len(ignore):
        raise ValueError(f"got {len(polys)} polygons but {len(ignore)} ignore flags")
    shrink_map = np.zeros((height, width), dtype=np.float32)
    shrink_mask = np.ones((height, width), dtype=np.float32)
    for raw, tag in zip(polys, ignore, strict=True):
        poly = np.array(raw, dtype=np.float64).reshape(-1, 2)
        poly[:, 0] = np.clip(poly[:, 0], 0, width - 1)
        poly[:, 1] = np.clip(poly[:, 1], 0, height - 1)
        area = _signed_area_paddle(poly)
        ignored = bool(tag) or abs(area) < 1
        if area > 0:
            poly = poly[::-1]
        box_h = poly[:, 1].max() - poly[:, 1].min()
        box_w = poly[:, 0].max() - poly[:, 0].min()
        if ignored or min(box_h, box_w) < min_text_size:
            _fill(shrink_mask, poly, 0.0)
            continue
        shape = Polygon(poly)
        shrunk: list[np.ndarray] = []
        for ratio in np.arange(shrink_ratio, 1, shrink_ratio):
            distance = shape.area * (1 - ratio**2) / shape.length
            shrunk = _offset(poly, -distance)
            if len(shrunk) == 1:
                break
        if not shrunk:
            _fill(shrink_mask, poly, 0.0)
            continue
        for piece in shrunk:
            _fill(shrink_map, piece, 1.0)
    return shrink_map, shrink_mask


def _edge_distance(xs: np.ndarray, ys: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from grid points to the edge ``a -> b`` as PaddleOCR's ``MakeBorderMap._distance`` defines it.

    Where the angle ``a-P-b`` is acute (``|Pa|^2 + |Pb|^2 > |ab|^2``, i.e. P outside the circle on
    diameter ``ab``) it is the distance to the nearer endpoint; elsewhere the distance to the line
    ``ab``. This equals the true point-to-segment distance near the edge and over-estimates it
    farther away (beyond the clipping distance for usual text boxes).

    Args:
        xs, ys: ``[h, w]`` float64 grid coordinates; a, b: ``(2,)`` endpoints.
    Returns:
        ``[h, w]`` float64 distances.
    """
    dx_a, dy_a = xs - a[0], ys - a[1]
    dx_b, dy_b = xs - b[0], ys - b[1]
    sq_a = dx_a * dx_a + dy_a * dy_a
    sq_b = dx_b * dx_b + dy_b * dy_b
    ex, ey = float(b[0] - a[0]), float(b[1] - a[1])
    sq_ab = ex * ex + ey * ey
    endpoint = np.sqrt(np.minimum(sq_a, sq_b))
    if sq_ab == 0.0:  # degenerate edge: distance to the point
        return endpoint
    line = np.abs(ex * dy_a - ey * dx_a) / np.sqrt(sq_ab)
    return np.where(sq_a + sq_b > sq_ab, endpoint, line)


def _draw_border(poly: np.ndarray, canvas: np.ndarray, mask: np.ndarray, shrink_ratio: float) -> None:
    """Add one polygon to ``canvas`` (max of ``1 - clip(dist / D, 0, 1)``) and ``mask`` (dilated polygon = 1)."""
    shape = Polygon(poly)
    if shape.area <= 0:
        return
    distance = shape.area * (1 - shrink_ratio**2) / shape.length
    padded = _offset(poly, distance)[0]
    _fill(mask, padded, 1.0)

    xmin, ymin = padded.min(axis=0)
    xmax, ymax = padded.max(axis=0)
    height, width = canvas.shape
    # Part of the dilated box inside the canvas (PaddleOCR clamps the box into the canvas).
    x0, x1 = max(int(xmin), 0), min(int(xmax), width - 1)
    y0, y1 = max(int(ymin), 0), min(int(ymax), height - 1)
    if x0 > x1 or y0 > y1:
        return
    xs = np.arange(x0, x1 + 1, dtype=np.float64)[None, :]
    ys = np.arange(y0, y1 + 1, dtype=np.float64)[:, None]
    xs, ys = np.broadcast_arrays(xs, ys)
    nearest = np.ones(xs.shape, dtype=np.float64)
    for i in range(len(poly)):
        d = _edge_distance(xs, ys, poly[i], poly[(i + 1) % len(poly)])
        np.minimum(nearest, np.clip(d / distance, 0.0, 1.0), out=nearest)
    region = canvas[y0 : y1 + 1, x0 : x1 + 1]
    np.fmax(region, (1.0 - nearest).astype(np.float32), out=region)


def make_border_map(
    polys: Sequence[np.ndarray],
    ignore: Sequence[bool],
    height: int,
    width: int,
    shrink_ratio: float = 0.4,
    thresh_min: float = 0.3,
    thresh_max: float = 0.7,
) -> tuple[np.ndarray, np.ndarray]:
    """PaddleOCR ``MakeBorderMap``: the threshold-map target and its mask.

    For every polygon not ignored (and of positive area): the mask is 1 inside the polygon dilated by
    ``D = A (1 - r^2) / L``; inside the dilated box the map is ``1 - min_edges clip(dist / D, 0, 1)``
    (max over polygons), i.e. 1 on the polygon outline falling to 0 at distance ``D``. The map is then
    rescaled to ``map * (thresh_max - thresh_min) + thresh_min``. Polygons are used unclipped.

    Returns:
        ``(threshold_map, threshold_mask)``: float32 ``[height, width]``.
    """
    if len(polys) != len(ignore):
        raise ValueError(f"got {len(polys)} polygons but {len(ignore)} ignore flags")
    canvas = np.zeros((height, width), dtype=np.float32)
    mask = np.zeros((height, width), dtype=np.float32)
    for raw, tag in zip(polys, ignore, strict=True):
        if tag:
            continue
        _draw_border(np.array(raw, dtype=np.float64).reshape(-1, 2), canvas, mask, shrink_ratio)
    threshold_map = (canvas * (thresh_max - thresh_min) + thresh_min).astype(np.float32)
    return threshold_map, mask


def make_db_targets(
    polys: Sequence[np.ndarray],
    ignore: Sequence[bool],
    height: int,
    width: int,
    *,
    shrink_ratio: float = 0.4,
    min_text_size: int = 8,
    thresh_min: float = 0.3,
    thresh_max: float = 0.7,
) -> dict[str, np.ndarray]:
    """All four DB targets for one ``height x width`` training image (float32 ``[H, W]`` each).

    Returns:
        ``{"shrink_map", "shrink_mask", "threshold_map", "threshold_mask"}``.
    """
    threshold_map, threshold_mask = make_border_map(
        polys, ignore, height, width, shrink_ratio=shrink_ratio, thresh_min=thresh_min, thresh_max=thresh_max
    )
    shrink_map, shrink_mask = make_shrink_map(
        polys, ignore, height, width, shrink_ratio=shrink_ratio, min_text_size=min_text_size
    )
    return {
        "shrink_map": shrink_map,
        "shrink_mask": shrink_mask,
        "threshold_map": threshold_map,
        "threshold_mask": threshold_mask,
    }
