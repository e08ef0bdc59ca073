"""``detr_postprocess`` against transformers' ``RTDetrImageProcessor.post_process_object_detection``."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import transformers

from pxtorch.processing.detr_postprocess import detr_postprocess


def _outputs(b: int, q: int, c: int, seed: int) -> SimpleNamespace:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, q, c, generator=g) * 3
    boxes = torch.rand(b, q, 4, generator=g)
    return SimpleNamespace(logits=logits, pred_boxes=boxes)


@pytest.mark.parametrize(("b", "q", "c"), [(2, 300, 23), (3, 300, 1), (1, 50, 20)])
def test_equals_transformers(b, q, c):
    out = _outputs(b, q, c, seed=b * 100 + c)
    sizes = [(613, 457), (1024, 768), (37, 2000)][:b]
    ours = detr_postprocess(out.logits, out.pred_boxes, sizes, num_top_queries=q)
    proc = transformers.RTDetrImageProcessor()
    # threshold below every sigmoid score: transformers keeps its whole top-Q, as ours does
    theirs = proc.post_process_object_detection(out, threshold=-1.0, target_sizes=sizes, use_focal_loss=True)
    assert len(ours) == b
    for rows, ref in zip(ours, theirs, strict=True):
        assert rows.shape == (q, 6) and rows.dtype == np.float32
        np.testing.assert_array_equal(rows[:, 0], ref["labels"].numpy())
        np.testing.assert_array_equal(rows[:, 1], ref["scores"].numpy())
        np.testing.assert_array_equal(rows[:, 2:], ref["boxes"].numpy())


def test_fewer_top_queries_keep_the_best():
    out = _outputs(1, 300, 23, seed=7)
    full = detr_postprocess(out.logits, out.pred_boxes, [(640, 480)], num_top_queries=300)[0]
    top = detr_postprocess(out.logits.numpy(), out.pred_boxes.numpy(), [(640, 480)], num_top_queries=40)[0]
    np.testing.assert_array_equal(top, full[:40])
    assert np.all(np.diff(full[:, 1]) <= 0)


def test_bad_shapes_raise():
    out = _outputs(1, 10, 3, seed=0)
    with pytest.raises(ValueError, match="expected logits"):
        detr_postprocess(out.logits, out.pred_boxes[..., :2], [(10, 10)])
    with pytest.raises(ValueError, match="sizes for a batch"):
        detr_postprocess(out.logits, out.pred_boxes, [(10, 10), (5, 5)])
