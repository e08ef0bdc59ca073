"""DB post-processing, reading-order sorting and box geometry on hand-made inputs."""

from __future__ import annotations

import numpy as np
import pytest

from pxtorch.processing.db_postprocess import DBParams, db_postprocess, unclip
from pxtorch.processing.geometry import min_area_box, points_to_boxes
from pxtorch.processing.sort_boxes import sort_quad_boxes


def _map_with_rect(h: int, w: int, x0: int, y0: int, x1: int, y1: int, p: float = 0.9) -> np.ndarray:
    prob = np.zeros((h, w), np.float32)
    prob[y0:y1, x0:x1] = p
    return prob


def test_db_finds_an_unclipped_quad_in_source_pixels():
    prob = _map_with_rect(64, 128, 20, 20, 100, 40)  # 80 x 20 text region at the detector's resolution
    polys, scores = db_postprocess(prob, (128, 256))  # source image is twice as large
    assert polys.dtype == np.int16 and polys.shape == (1, 4, 2)
    assert scores[0] == pytest.approx(0.9, abs=0.05)
    # unclip by area * 1.5 / perimeter = 1600 * 1.5 / 200 = 12 px at detector scale, then x2
    (x_min, y_min), (x_max, y_max) = polys[0].min(0), polys[0].max(0)
    assert abs(x_min - 2 * (20 - 12)) <= 3 and abs(x_max - 2 * (99 + 12)) <= 3
    assert abs(y_min - 2 * (20 - 12)) <= 3 and abs(y_max - 2 * (39 + 12)) <= 3
    tl, tr, br, bl = polys[0]
    assert tl[0] < tr[0] and tl[1] < bl[1] and br[0] > bl[0]


def test_db_thresholds_and_size_filters():
    prob = _map_with_rect(64, 128, 20, 20, 100, 40, p=0.5)
    assert len(db_postprocess(prob, (64, 128), DBParams(box_thresh=0.6))[0]) == 0  # mean 0.5 < 0.6
    assert len(db_postprocess(prob, (64, 128), DBParams(box_thresh=0.4))[0]) == 1
    assert len(db_postprocess(prob, (64, 128), DBParams(thresh=0.6))[0]) == 0  # nothing above the bitmap threshold
    tiny = _map_with_rect(64, 128, 10, 10, 40, 12)  # 2 px tall: below min_size 3
    assert len(db_postprocess(tiny, (64, 128))[0]) == 0
    clipped = db_postprocess(_map_with_rect(64, 128, 0, 0, 30, 20), (64, 128))[0]
    assert clipped.min() >= 0
    with pytest.raises(ValueError, match="thresh"):
        DBParams(thresh=1.5)


def test_unclip_grows_a_square_by_the_area_over_perimeter_rule():
    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], np.float32)
    grown = unclip(square, 2.0)  # distance = 100 * 2 / 40 = 5
    assert grown[:, 0].min() == pytest.approx(-5, abs=1) and grown[:, 0].max() == pytest.approx(15, abs=1)


def test_sort_quad_boxes_reads_rows_left_to_right():
    def box(x: int, y: int) -> np.ndarray:
        return np.array([[x, y], [x + 20, y], [x + 20, y + 10], [x, y + 10]], np.int16)

    a, b, c, d = box(100, 52), box(10, 50), box(200, 45), box(5, 80)  # b, a, c within 10 px: one row
    order = sort_quad_boxes([a, b, c, d])
    assert [tuple(o[0]) for o in order] == [(10, 50), (100, 52), (200, 45), (5, 80)]
    assert sort_quad_boxes([]) == []


def test_min_area_box_orders_corners_and_points_to_boxes():
    pts = np.array([[30, 10], [50, 30], [30, 50], [10, 30]], np.int32)  # a diamond
    box, short = min_area_box(pts)
    assert box.shape == (4, 2) and short == pytest.approx(28.28, abs=0.01)
    assert box[0][0] <= box[1][0] and box[3][1] >= box[0][1]
    quads = np.array([[[1, 2], [9, 3], [8, 7], [2, 6]]], np.int16)
    assert points_to_boxes(quads).tolist() == [[1, 2, 9, 7]]
    assert points_to_boxes([]).shape == (0, 4)
