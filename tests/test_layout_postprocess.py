"""PaddleX layout post-processing (``DetPostProcess.apply``) on hand-built boxes.

Every expected value below is worked out by hand from PaddleX's rules
(``paddlex/inference/models/object_detection/processors.py``): strict ``score > threshold``, 0.5 for classes
missing from a threshold dict; layout NMS with ``+1`` pixel areas dropping IoU ``>= 0.6`` (same class) or
``>= 0.98`` (other class); containment = ``inter / area(i) >= 0.9``; unclip about the centre; merge before
unclip; clip to the image last.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from pxtorch.processing.layout_postprocess import check_containment, layout_nms_keep, layout_postprocess

LABELS = ("text", "title", "figure")
IMG = (200, 100)  # (w, h)


def _rows(*rows) -> np.ndarray:
    return np.array(rows, dtype=np.float64)


def _summary(boxes: list[dict]) -> list[tuple]:
    return [(b["cls_id"], b["label"], round(b["score"], 6), [round(v, 6) for v in b["coordinate"]]) for b in boxes]


def test_float_threshold_is_strict_and_output_shape():
    boxes = _rows([0, 0.5, 10, 10, 20, 20], [1, 0.51, 30, 30, 40, 40], [2, 0.9, 50, 50, 60, 60])
    out = layout_postprocess(boxes, IMG, LABELS, threshold=0.5)
    assert _summary(out) == [(1, "title", 0.51, [30, 30, 40, 40]), (2, "figure", 0.9, [50, 50, 60, 60])]
    json.dumps(out)  # plain Python types only
    assert all(type(b["cls_id"]) is int and type(b["score"]) is float for b in out)


def test_threshold_dict_defaults_to_half_and_groups_by_class():
    boxes = _rows(
        [2, 0.45, 0, 0, 10, 10],  # figure: not in the dict -> 0.5 -> dropped
        [1, 0.3, 20, 0, 30, 10],  # title 0.3 > 0.25 -> kept
        [0, 0.85, 40, 0, 50, 10],  # text 0.85 <= 0.9 -> dropped
        [2, 0.55, 60, 0, 70, 10],  # figure 0.55 > 0.5 -> kept
        [0, 0.95, 80, 0, 90, 10],  # text kept
    )
    out = layout_postprocess(boxes, IMG, LABELS, threshold={0: 0.9, 1: 0.25})
    assert [(b["cls_id"], b["score"]) for b in out] == [(0, 0.95), (1, 0.3), (2, 0.55)]


def test_layout_nms_plus_one_areas_and_class_rule():
    # same class: A=[0,0,3,3], B=[1,0,4,3]: with +1 areas inter 3*4=12, union 16+16-12=20 -> IoU 0.6 >= 0.6
    # (without +1 it would be 6/12 = 0.5 and B would survive)
    same = _rows([0, 0.9, 0, 0, 3, 3], [0, 0.8, 1, 0, 4, 3])
    assert layout_nms_keep(same) == [0]
    # other class, identical box: IoU 1 >= 0.98 -> dropped; other class, IoU 0.9 -> kept
    # C=[0,0,99,99] (area 10000), D=[0,0,99,89] (9000): IoU 9000/10000 = 0.9
    other = _rows(
        [0, 0.7, 100, 0, 110, 10], [0, 0.6, 0, 0, 99, 99], [1, 0.95, 100, 0, 110, 10], [2, 0.65, 0, 0, 99, 89]
    )
    assert layout_nms_keep(other) == [2, 3, 1]
    out = layout_postprocess(other, IMG, LABELS, threshold=0.1, layout_nms=True)
    assert [b["score"] for b in out] == [0.95, 0.65, 0.6]  # rows come out in descending score order


def test_merge_modes():
    big = [0, 0.9, 0, 0, 100, 100]
    inside = [1, 0.8, 10, 10, 20, 20]  # fully inside big
    partial = [2, 0.7, 90, 0, 110, 10]  # half inside big: 100/200 = 0.5 < 0.9
    boxes = _rows(big, inside, partial)
    large = layout_postprocess(boxes, IMG, LABELS, threshold=0.1, layout_merge_bboxes_mode="large")
    assert [b["cls_id"] for b in large] == [0, 2]  # the contained box goes
    small = layout_postprocess(boxes, IMG, LABELS, threshold=0.1, layout_merge_bboxes_mode="small")
    assert [b["cls_id"] for b in small] == [1, 2]  # the container goes
    union = layout_postprocess(boxes, IMG, LABELS, threshold=0.1, layout_merge_bboxes_mode="union")
    assert [b["cls_id"] for b in union] == [0, 1, 2]
    # 90% is enough: [0,0,10,10] with 90 of its 100 px^2 inside [0,1,50,50]
    nine = _rows([0, 0.9, 0, 1, 50, 50], [1, 0.8, 0, 0, 10, 10])
    assert [b["cls_id"] for b in layout_postprocess(nine, IMG, LABELS, 0.1, layout_merge_bboxes_mode="large")] == [0]


def test_merge_identical_boxes():
    # two identical boxes contain each other: "large" drops both, "small" keeps both (both are contained)
    boxes = _rows([0, 0.9, 0, 0, 50, 50], [1, 0.8, 0, 0, 50, 50])
    assert layout_postprocess(boxes, IMG, LABELS, 0.1, layout_merge_bboxes_mode="large") == []
    assert len(layout_postprocess(boxes, IMG, LABELS, 0.1, layout_merge_bboxes_mode="small")) == 2


def test_merge_per_class_dict():
    boxes = _rows(
        [0, 0.9, 0, 0, 100, 100],  # 0: text container
        [2, 0.8, 10, 10, 20, 20],  # 1: figure inside the text box
        [1, 0.9, 120, 0, 190, 90],  # 2: title container
        [2, 0.7, 130, 10, 140, 20],  # 3: figure inside the title box
    )
    # "large" for containers of class 1 only: box 3 (inside the title) goes, box 1 stays
    out = layout_postprocess(boxes, IMG, LABELS, 0.1, layout_merge_bboxes_mode={1: "large"})
    assert [b["coordinate"][0] for b in out] == [0, 10, 120]
    # "small" for boxes of class 2: every box containing a figure goes (both containers)
    out = layout_postprocess(boxes, IMG, LABELS, 0.1, layout_merge_bboxes_mode={2: "small"})
    assert [b["coordinate"][0] for b in out] == [10, 130]
    # "small" for class 0: no text box lies inside another, nothing goes
    assert len(layout_postprocess(boxes, IMG, LABELS, 0.1, layout_merge_bboxes_mode={0: "small", 1: "union"})) == 4


def test_formula_never_contained_in_non_formula():
    labels = ("text", "formula")
    boxes = _rows([0, 0.9, 0, 0, 100, 100], [1, 0.8, 10, 10, 20, 20])
    contains, contained = check_containment(boxes, formula_index=1)
    assert contains.tolist() == [0, 0] and contained.tolist() == [0, 0]
    assert len(layout_postprocess(boxes, IMG, labels, 0.1, layout_merge_bboxes_mode="large")) == 2
    # a non-formula box inside a formula box is still contained
    boxes = _rows([1, 0.9, 0, 0, 100, 100], [0, 0.8, 10, 10, 20, 20])
    out = layout_postprocess(boxes, IMG, labels, 0.1, layout_merge_bboxes_mode="large")
    assert [b["label"] for b in out] == ["formula"]


def test_unclip_about_centre_then_clip():
    boxes = _rows([0, 0.9, 10, 20, 30, 60], [1, 0.8, 150, 40, 190, 90])
    # 1.5: w 20 -> 30, h 40 -> 60 about (20, 40); box 2: w 40 -> 60, h 50 -> 75 about (170, 65),
    # giving [140, 27.5, 200, 102.5] -> clipped to the 200x100 image
    out = layout_postprocess(boxes, IMG, LABELS, 0.1, layout_unclip_ratio=1.5)
    assert [b["coordinate"] for b in out] == [[5.0, 10.0, 35.0, 70.0], [140.0, 27.5, 200.0, 100.0]]
    out = layout_postprocess(boxes, IMG, LABELS, 0.1, layout_unclip_ratio=(2.0, 1.0))
    assert out[0]["coordinate"] == [0.0, 20.0, 40.0, 60.0]
    out = layout_postprocess(boxes, IMG, LABELS, 0.1, layout_unclip_ratio={1: (0.5, 0.5)})
    assert [b["coordinate"] for b in out] == [[10.0, 20.0, 30.0, 60.0], [160.0, 52.5, 180.0, 77.5]]


def test_merge_is_judged_before_unclip():
    # the small box sticks out of the big one (80% inside) and is kept by "large"; shrinking it first
    # ({1: (0.5, 0.5)} -> [43.125, 12.5, 49.375, 17.5]) would have put it inside, but PaddleX merges first
    boxes = _rows([0, 0.9, 0, 0, 50, 50], [1, 0.8, 40, 10, 52.5, 20])
    out = layout_postprocess(
        boxes, IMG, LABELS, 0.1, layout_merge_bboxes_mode="large", layout_unclip_ratio={1: (0.5, 0.5)}
    )
    assert [b["coordinate"] for b in out] == [[0.0, 0.0, 50.0, 50.0], [43.125, 12.5, 49.375, 17.5]]


def test_boxes_outside_image_dropped_and_empty_results():
    boxes = _rows([0, 0.9, 210, 10, 230, 20], [1, 0.9, -30, -30, -10, -10], [2, 0.9, -5, -5, 10, 10])
    out = layout_postprocess(boxes, IMG, LABELS, 0.5)
    assert _summary(out) == [(2, "figure", 0.9, [0.0, 0.0, 10.0, 10.0])]
    assert layout_postprocess(np.zeros((0, 6)), IMG, LABELS, 0.5) == []
    assert layout_postprocess(boxes, IMG, LABELS, {0: 0.95, 1: 0.95, 2: 0.95}, layout_nms=True) == []


def test_large_image_filter():
    labels = ("text", "image")
    # landscape 200x100: an image box over 82% of the page goes when other boxes exist
    page = [1, 0.9, 0, 0, 200, 90]  # 90% of the page
    boxes = _rows(page, [0, 0.8, 10, 10, 20, 20])
    assert [b["label"] for b in layout_postprocess(boxes, (200, 100), labels, 0.1)] == ["text"]
    # portrait 100x200, 90% < 93%: kept
    boxes = _rows([1, 0.9, 0, 0, 90, 200], [0, 0.8, 10, 10, 20, 20])
    assert len(layout_postprocess(boxes, (100, 200), labels, 0.1)) == 2
    # a lone page-sized image box stays
    assert len(layout_postprocess(_rows(page), (200, 100), labels, 0.1)) == 1


def test_bad_arguments():
    boxes = _rows([0, 0.9, 10, 10, 20, 20], [0, 0.8, 11, 11, 21, 21])
    with pytest.raises(ValueError):
        layout_postprocess(boxes, IMG, LABELS, 0.1, layout_merge_bboxes_mode="biggest")
    with pytest.raises(ValueError):
        layout_postprocess(boxes, IMG, LABELS, 0.1, layout_unclip_ratio=(1.0, 1.0, 1.0))
