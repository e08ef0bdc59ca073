"""DB text-detection training parts: targets, loss, train/eval transforms, metric (hand-computed expectations)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pyclipper
import pytest
import torch

from pxtorch.training.losses.db_loss import BalanceLoss, DBLoss, DiceLoss, MaskL1Loss
from pxtorch.training.metrics.det_metric import DetMetric, match_detections
from pxtorch.training.targets.db_targets import (
    make_border_map,
    make_db_targets,
    make_shrink_map,
    scheduled_shrink_ratio,
)
from pxtorch.training.transforms.det import DetTrainTransform, det_eval_resize, normalize_det_image


def rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Clockwise-on-screen quad (x right, y down)."""
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)


# --------------------------------------------------------------------------------------------- targets
# A 100 x 40 box: A = 4000, L = 280, D = A (1 - 0.4^2) / L = 4000 * 0.84 / 280 = 12.
BOX = rect(30, 30, 130, 70)
D = 4000 * (1 - 0.4**2) / 280
H, W = 100, 160


def test_offset_distance_is_twelve():
    assert abs(D - 12.0) < 1e-9


@pytest.mark.parametrize("order", [1, -1])
def test_shrink_map_is_box_shrunk_by_d(order):
    shrink_map, shrink_mask = make_shrink_map([BOX[::order]], [False], H, W)
    assert shrink_map.dtype == np.float32 and shrink_map.shape == (H, W)
    ys, xs = np.nonzero(shrink_map)
    # 30 + 12 = 42 ... 130 - 12 = 118 (x), 30 + 12 = 42 ... 70 - 12 = 58 (y); fillPoly includes the outline.
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (42, 118, 42, 58)
    assert shrink_map.sum() == (118 - 42 + 1) * (58 - 42 + 1)
    assert set(np.unique(shrink_map)) == {0.0, 1.0}
    assert (shrink_mask == 1).all()


def test_threshold_map_values():
    tmap, tmask = make_border_map([BOX], [False], H, W)
    assert tmap.dtype == np.float32 and tmask.dtype == np.float32
    # On the outline: distance 0 -> thresh_max.
    for x, y in [(80, 30), (30, 50), (130, 45), (100, 70), (30, 30)]:
        assert tmap[y, x] == pytest.approx(0.7), (x, y)
    # 6 px inside the long edge and 6 px outside it: 1 - 6/12 = 0.5 -> 0.3 + 0.4 * 0.5.
    assert tmap[36, 80] == pytest.approx(0.5, abs=1e-6)
    assert tmap[24, 80] == pytest.approx(0.5, abs=1e-6)
    # 3 px from the short edge: 1 - 3/12 = 0.75 -> 0.6.
    assert tmap[50, 33] == pytest.approx(0.6, abs=1e-6)
    # Centre (20 px from the long edges) and far away: thresh_min.
    assert tmap[50, 80] == pytest.approx(0.3)
    assert tmap[5, 5] == pytest.approx(0.3)
    assert tmap.min() == pytest.approx(0.3) and tmap.max() == pytest.approx(0.7)
    # Mask: the box dilated by 12 px with round corners.
    assert tmask[18:83, 80].all() and not tmask[17, 80] and not tmask[83, 80]
    assert tmask[50, 18:143].all() and not tmask[50, 17] and not tmask[50, 143]
    assert tmask[50, 80] == 1  # inside the box too
    assert tmask[18, 18] == 0  # corner rounded: |(18, 18) - (30, 30)| = 17 > 12
    assert tmask[22, 22] == 1  # |(22, 22) - (30, 30)| = 11.3 < 12
    assert set(np.unique(tmask)) == {0.0, 1.0}


def test_ignored_polygon_is_masked_out():
    targets = make_db_targets([BOX], [True], H, W)
    assert targets.keys() == {"shrink_map", "shrink_mask", "threshold_map", "threshold_mask"}
    assert targets["shrink_map"].sum() == 0
    assert (targets["threshold_mask"] == 0).all()
    np.testing.assert_allclose(targets["threshold_map"], 0.3)
    mask = targets["shrink_mask"]
    assert (mask[30:71, 30:131] == 0).all()  # the box (outline included) is not trained
    assert mask.sum() == H * W - 101 * 41


def test_too_small_polygon_masked_in_shrink_only():
    small = rect(20, 80, 60, 86)  # 40 x 6: min side 6 < 8
    targets = make_db_targets([BOX, small], [False, False], H, W)
    assert (targets["shrink_mask"][80:87, 20:61] == 0).all()
    assert targets["shrink_mask"].sum() == H * W - 41 * 7
    assert targets["shrink_map"][78:90, 15:65].sum() == 0
    # MakeBorderMap runs before MakeShrinkMap in PaddleOCR: the small box still gets a threshold target.
    assert targets["threshold_mask"][83, 40] == 1 and targets["threshold_map"][80, 40] == pytest.approx(0.7)
    # min_text_size 5 keeps it.
    shrink_map, _ = make_shrink_map([small], [False], H, W, min_text_size=5)
    assert shrink_map.sum() > 0


def test_degenerate_polygon_ignored():
    line = np.array([[10, 10], [50, 10], [50, 10.01], [10, 10.01]], dtype=np.float32)  # |area| < 1
    shrink_map, shrink_mask = make_shrink_map([line], [False], H, W, min_text_size=0)
    assert shrink_map.sum() == 0 and shrink_mask[10, 10:51].sum() == 0


def test_shrink_retries_larger_ratio_when_split():
    # A dumbbell: two 50x40 blocks joined by a 10 px neck; 2 D(0.4) = 17.2 > 10 > 2 D(0.8) = 7.4, so
    # shrinking by D(0.4) splits it and D(0.8) does not.
    poly = np.array(
        [[10, 10], [60, 10], [60, 35], [110, 35], [110, 10], [160, 10], [160, 50], [110, 50], [110, 45],
         [60, 45], [60, 50], [10, 50]],
        dtype=np.float32,
    )  # fmt: skip
    from shapely.geometry import Polygon

    shape = Polygon(poly)
    offsetter = pyclipper.PyclipperOffset()
    offsetter.AddPath(poly.tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    assert len(offsetter.Execute(-shape.area * (1 - 0.4**2) / shape.length)) == 2
    assert len(offsetter.Execute(-shape.area * (1 - 0.8**2) / shape.length)) == 1
    shrink_map, _ = make_shrink_map([poly], [False], 70, 180)
    count, _ = cv2.connectedComponents(shrink_map.astype(np.uint8))
    assert count - 1 == 1  # one kernel, through the neck
    assert shrink_map[40, 85] == 1


def test_shrink_ratio_schedule():
    assert scheduled_shrink_ratio(0.4, 1024, 500) == pytest.approx(0.8096)
    assert scheduled_shrink_ratio(0.4, 0, 500) == pytest.approx(0.4)


def test_border_map_speed_many_polys():
    rng = np.random.default_rng(0)
    polys = [rect(x, y, x + w, y + h) for x, y, w, h in rng.uniform([0, 0, 20, 10], [560, 600, 200, 40], (20, 4))]
    import time

    start = time.perf_counter()
    targets = make_db_targets(polys, [False] * 20, 640, 640)
    assert time.perf_counter() - start < 1.0
    assert targets["threshold_mask"].sum() > 0 and targets["shrink_map"].sum() > 0


# --------------------------------------------------------------------------------------------- loss
def _batch(shrink, shrink_mask, thr, thr_mask) -> dict[str, torch.Tensor]:
    """One-image batch of ``[1, ...]`` float32 targets."""
    arrays = {"shrink_map": shrink, "shrink_mask": shrink_mask, "threshold_map": thr, "threshold_mask": thr_mask}
    return {k: torch.tensor(v, dtype=torch.float32)[None] for k, v in arrays.items()}


def test_db_loss_perfect_prediction():
    targets = make_db_targets([BOX], [False], H, W)
    batch = {k: torch.from_numpy(v)[None] for k, v in targets.items()}
    maps = torch.stack([batch["shrink_map"], batch["threshold_map"], batch["shrink_map"]], dim=1)
    out = DBLoss()(maps, batch)
    assert out.keys() == {"loss", "loss_shrink_maps", "loss_threshold_maps", "loss_binary_maps"}
    for value in out.values():
        assert value.dtype == torch.float32 and value.ndim == 0
        assert float(value) == pytest.approx(0.0, abs=1e-5)


def test_db_loss_hand_computed():
    gt = [[1, 0, 0, 0]]
    mask = [[1, 1, 1, 1]]
    thr_gt = [[0.3, 0.3, 0.3, 0.7]]
    thr_mask = [[1, 1, 0, 1]]
    p_shrink = [[0.5, 0.5, 0.25, 0.0]]
    p_thr = [[0.3, 0.7, 0.5, 0.5]]
    p_bin = [[1.0, 0.0, 0.0, 1.0]]
    maps = torch.tensor([[p_shrink, p_thr, p_bin]], dtype=torch.float32)
    out = DBLoss()(maps, _batch(gt, mask, thr_gt, thr_mask))
    # Dice inside BalanceLoss: I = 0.5, sum(p) = 1.25, sum(g) = 1 -> 1 - 1 / 2.25; P = 1, k = min(3, 3) = 3.
    dice = 1 - 2 * 0.5 / (1.25 + 1 + 1e-6)
    shrink = 5 * dice * (1 + 3) / (1 + 3 + 1e-6)
    thresh = 10 * (0 + 0.4 + 0.2) / (3 + 1e-6)  # masked |diff| = 0, .4, (.2 masked), .2
    binary = 1 - 2 * 1 / (2 + 1 + 1e-6)
    assert float(out["loss_shrink_maps"]) == pytest.approx(shrink, rel=1e-5)
    assert float(out["loss_threshold_maps"]) == pytest.approx(thresh, rel=1e-5)
    assert float(out["loss_binary_maps"]) == pytest.approx(binary, rel=1e-5)
    assert float(out["loss"]) == pytest.approx(shrink + thresh + binary, rel=1e-5)


def test_db_loss_half_precision_input_computed_in_float32():
    maps = torch.tensor([[[[0.5, 0.5, 0.25, 0.0]], [[0.3, 0.7, 0.5, 0.5]], [[1.0, 0.0, 0.0, 1.0]]]])
    batch = _batch([[1, 0, 0, 0]], [[1, 1, 1, 1]], [[0.3, 0.3, 0.3, 0.7]], [[1, 1, 0, 1]])
    full = DBLoss()(maps, batch)
    half = DBLoss()(maps.half(), {k: v.half() for k, v in batch.items()})
    for key in full:
        assert half[key].dtype == torch.float32
        assert float(half[key]) == pytest.approx(float(full[key]), rel=1e-3)


def test_balance_loss_ohem_picks_hardest_negatives():
    pred = torch.tensor([[[0.8, 0.9, 0.1, 0.7, 0.2, 0.6, 0.05, 0.3]]])
    gt = torch.tensor([[[1.0, 0, 0, 0, 0, 0, 0, 0]]])
    mask = torch.ones_like(gt)
    loss = BalanceLoss(main_loss_type="BCELoss", negative_ratio=3)(pred, gt, mask)
    # P = 1, N = 7, k = 3: the negatives with p = 0.9, 0.7, 0.6.
    expected = -(math.log(0.8) + math.log(0.1) + math.log(0.3) + math.log(0.4)) / (4 + 1e-6)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    # Masking out the hardest negative promotes p = 0.3.
    mask[0, 0, 1] = 0
    loss = BalanceLoss(main_loss_type="BCELoss", negative_ratio=3)(pred, gt, mask)
    expected = -(math.log(0.8) + math.log(0.3) + math.log(0.4) + math.log(0.7)) / (4 + 1e-6)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    # k is capped by the number of negatives: ratio 10 -> k = min(6, 10) = 6 (all unmasked negatives).
    loss = BalanceLoss(main_loss_type="BCELoss", negative_ratio=10)(pred, gt, mask)
    negs = [0.1, 0.7, 0.2, 0.6, 0.05, 0.3]
    expected = -(math.log(0.8) + sum(math.log(1 - p) for p in negs)) / (7 + 1e-6)
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_balance_loss_without_positives_is_zero():
    pred = torch.full((1, 2, 2), 0.9)
    zeros = torch.zeros(1, 2, 2)
    assert float(BalanceLoss(main_loss_type="BCELoss")(pred, zeros, torch.ones(1, 2, 2))) == 0.0
    assert float(BalanceLoss()(pred, zeros, torch.ones(1, 2, 2))) == 0.0


def test_balance_loss_unbalanced_and_bad_type():
    pred = torch.tensor([[[0.25, 0.5]]])
    gt = torch.tensor([[[1.0, 0.0]]])
    raw = BalanceLoss(balance_loss=False, main_loss_type="BCELoss")(pred, gt, torch.ones_like(gt))
    assert raw.shape == (1, 1, 2)
    assert raw[0, 0].tolist() == pytest.approx([-math.log(0.25), -math.log(0.5)], rel=1e-6)
    with pytest.raises(ValueError):
        BalanceLoss(main_loss_type="CrossEntropy")


def test_dice_and_l1_parts():
    pred = torch.tensor([0.2, 0.8, 1.0])
    gt = torch.tensor([0.0, 1.0, 1.0])
    mask = torch.tensor([1.0, 1.0, 0.0])
    assert float(DiceLoss()(pred, gt, mask)) == pytest.approx(1 - 1.6 / (1.0 + 1.0 + 1e-6), rel=1e-6)
    assert float(MaskL1Loss()(pred, gt, mask)) == pytest.approx(0.4 / (2 + 1e-6), rel=1e-6)


# --------------------------------------------------------------------------------------------- transforms
QUAD = np.array([[70, 40], [230, 70], [215, 140], [60, 110]], dtype=np.float32)


def _poly_mask(poly: np.ndarray, h: int, w: int) -> np.ndarray:
    """Pixels whose centres lie inside ``poly`` (continuous coordinates)."""
    ys, xs = np.mgrid[0:h, 0:w]
    path = np.asarray(poly, dtype=np.float64)
    inside = np.zeros((h, w), dtype=bool)
    cx, cy = xs + 0.5, ys + 0.5
    j = len(path) - 1
    for i in range(len(path)):  # even-odd ray casting
        xi, yi = path[i]
        xj, yj = path[j]
        crosses = ((yi > cy) != (yj > cy)) & (cx < (xj - xi) * (cy - yi) / (yj - yi + 1e-12) + xi)
        inside ^= crosses
        j = i
    return inside


@pytest.mark.parametrize("seed", range(8))
def test_train_transform_keeps_polygons_on_content(seed):
    img = np.zeros((180, 300, 3), dtype=np.uint8)
    img[_poly_mask(QUAD, 180, 300)] = 255
    far = rect(-120, 20, -60, 60)  # entirely outside the image: always dropped
    transform = DetTrainTransform()
    out, polys, ignore = transform(img, [QUAD, far], [False, True], np.random.default_rng(seed))
    assert out.shape == (640, 640, 3) and out.dtype == np.uint8
    assert len(polys) == 1 and ignore == [False]  # the far box is dropped with its flag
    poly = polys[0]
    assert poly.dtype == np.float32 and poly.shape == (4, 2)
    inside = _poly_mask(poly, 640, 640)
    bright = out[:, :, 0] > 127
    iou = (inside & bright).sum() / (inside | bright).sum()
    assert iou > 0.95, iou
    core = cv2.erode(inside.astype(np.uint8), np.ones((11, 11), np.uint8)).astype(bool)
    assert core.sum() > 0 and (out[core] > 200).all()
    halo = cv2.dilate(inside.astype(np.uint8), np.ones((11, 11), np.uint8)).astype(bool)
    assert (out[~halo] < 30).all()


def test_train_transform_reproducible_and_varied():
    img = np.zeros((180, 300, 3), dtype=np.uint8)
    img[_poly_mask(QUAD, 180, 300)] = 255
    transform = DetTrainTransform(size=(320, 480))
    a = transform(img, [QUAD], [False], np.random.default_rng(3))
    b = transform(img, [QUAD], [False], np.random.default_rng(3))
    c = transform(img, [QUAD], [False], np.random.default_rng(4))
    assert a[0].shape == (320, 480, 3)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1][0], b[1][0])
    assert not np.array_equal(a[1][0], c[1][0])


def test_train_transform_exact_geometry_flip_and_full_image_crop():
    # No rotation / resize, certain flip, no crop tries -> whole 320x160 image fitted into 640x640 (x2, padded).
    img = np.zeros((160, 320, 3), dtype=np.uint8)
    img[:, :160] = 255  # left half white
    transform = DetTrainTransform(flip_prob=1.0, rotate=(0, 0), scale=(1, 1), crop_max_tries=0)
    out, polys, _ = transform(img, [QUAD], [False], np.random.default_rng(0))
    expected = np.stack([(320 - QUAD[:, 0]) * 2, QUAD[:, 1] * 2], axis=1)
    np.testing.assert_allclose(polys[0], expected, atol=1e-4)
    assert (out[:320, 330:640] == 255).all() and (out[:320, :310] == 0).all()  # now the right half is white
    assert (out[320:] == 0).all()  # zero padding below the 640x320 content


def test_train_transform_rotation_direction_and_centre():
    img = np.zeros((100, 100, 3), dtype=np.uint8)
    transform = DetTrainTransform(size=(100, 100), flip_prob=0.0, rotate=(30, 30), scale=(1, 1), crop_max_tries=0)
    square = rect(50, 50, 60, 60)
    _, polys, _ = transform(img, [square], [False], np.random.default_rng(0))
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    # (60, 50) is 10 px right of the centre (50, 50): clockwise on screen -> (50 + 10 cos, 50 + 10 sin).
    np.testing.assert_allclose(polys[0][0], [50, 50], atol=1e-4)
    np.testing.assert_allclose(polys[0][1], [50 + 10 * c, 50 + 10 * s], atol=1e-4)


def test_train_transform_crop_excludes_far_text():
    # Two text boxes far apart; the crop often holds only one: dropped boxes go with their flags.
    img = np.zeros((400, 400, 3), dtype=np.uint8)
    boxes = [rect(20, 20, 120, 50), rect(280, 330, 380, 360)]
    counts = set()
    for seed in range(20):
        _, polys, ignore = DetTrainTransform()(img, boxes, [False, False], np.random.default_rng(seed))
        assert len(polys) == len(ignore) >= 1
        counts.add(len(polys))
    assert counts == {1, 2}


def test_crop_free_regions_paddle_quirk():
    from pxtorch.training.transforms.det import _split_regions

    axis = np.array([0, 1, 2, 5, 6, 9])
    # PaddleOCR's split_regions never closes the last run; keep_last=True returns it too.
    assert [r.tolist() for r in _split_regions(axis, keep_last=False)] == [[0, 1, 2], [5, 6]]
    assert [r.tolist() for r in _split_regions(axis, keep_last=True)] == [[0, 1, 2], [5, 6], [9]]
    assert _split_regions(np.array([3, 4, 5]), keep_last=False) == []


def test_det_eval_resize_defaults():
    img = np.zeros((100, 200, 3), dtype=np.uint8)
    resized, shape = det_eval_resize(img)
    assert resized.shape == (736, 1472, 3)  # short side up to 736, both multiples of 32
    np.testing.assert_allclose(shape, [100, 200, 7.36, 7.36])
    big = np.zeros((1000, 800, 3), dtype=np.uint8)
    resized, shape = det_eval_resize(big)  # short side already >= 736: only rounded to 32
    assert resized.shape == (992, 800, 3)
    np.testing.assert_allclose(shape, [1000, 800, 0.992, 1.0])


def test_normalize_det_image_bgr_order():
    img = np.zeros((2, 3, 3), dtype=np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 255, 0, 128  # B, G, R
    out = normalize_det_image(img)
    assert out.shape == (3, 2, 3) and out.dtype == np.float32 and out.flags.c_contiguous
    expected = [(1.0 - 0.485) / 0.229, (0.0 - 0.456) / 0.224, (128 / 255 - 0.406) / 0.225]
    np.testing.assert_allclose(out[:, 0, 0], expected, rtol=1e-6)


# --------------------------------------------------------------------------------------------- metric
A = rect(0, 0, 10, 10)
B = rect(20, 0, 30, 10)
C = rect(50, 50, 60, 60)


def _prh(matched: int, gt: int, det: int) -> tuple[float, float, float]:
    p = matched / det if det else 0.0
    r = matched / gt if gt else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


@pytest.mark.parametrize(
    ("preds", "gts", "ignore", "expected"),
    [
        ([A, B], [A, B], [False, False], (2, 2, 2)),  # perfect
        ([A], [A, B], [False, False], (1, 2, 1)),  # one miss
        ([A, C], [A], [False], (1, 1, 2)),  # one false positive
        ([A, rect(20.5, 0, 30, 10)], [A, B], [False, True], (1, 1, 1)),  # det on a don't-care GT: not counted
        ([A, rect(24, 0, 40, 10)], [A, B], [False, True], (1, 1, 2)),  # only 6/16 on the don't-care GT
        ([rect(0, 0, 19.8, 10)], [A], [False], (1, 1, 1)),  # IoU 100 / 198 > 0.5
        ([rect(0, 0, 20.2, 10)], [A], [False], (0, 1, 1)),  # IoU 100 / 202 < 0.5
        ([A, np.array([[0, 0], [10, 10], [10, 0], [0, 10]], np.float32)], [A], [False], (1, 1, 1)),  # bow-tie skipped
        ([A], [A, np.array([[0, 0], [5, 5]], np.float32)], [False, False], (1, 1, 1)),  # 2-point GT skipped
        ([A, A], [A], [False], (1, 1, 2)),  # one-to-one: the duplicate is a false positive
        ([], [], [], (0, 0, 0)),
    ],
)
def test_match_detections(preds, gts, ignore, expected):
    assert match_detections(preds, gts, ignore) == expected


def test_match_detections_greedy_order():
    # GT0 could match either det; the greedy pass gives it det0, so GT1 (overlapping only det0) is missed.
    g0, g1 = rect(0, 0, 10, 10), rect(0, 1, 10, 11)
    d0, d1 = rect(0, 0.5, 10, 10.5), rect(0, -1, 10, 9)
    assert match_detections([d0, d1], [g0, g1], [False, False]) == (2, 2, 2)
    assert match_detections([d0], [g0, g1], [False, False]) == (1, 2, 1)


@pytest.mark.filterwarnings("ignore:The ``compute`` method of metric DetMetric was called before")
def test_det_metric_sums_over_images():
    metric = DetMetric()
    metric.update([[A]], [[A]], [[False]])
    metric.update([[A, C], [B]], [[A, B, C], [B]], [[False, False, False], [False]])
    # Image 1: (1, 1, 1); image 2: A and C match, B missed (2, 3, 2); image 3: (1, 1, 1). Summed, not averaged.
    out = metric.compute()
    p, r, h = _prh(4, 5, 4)
    assert float(out["precision"]) == pytest.approx(p)
    assert float(out["recall"]) == pytest.approx(r)
    assert float(out["hmean"]) == pytest.approx(h)
    assert int(metric.matched) == 4 and int(metric.gt_care) == 5 and int(metric.det_care) == 4
    metric.reset()
    out = metric.compute()
    assert all(float(v) == 0.0 for v in out.values())


def test_det_metric_false_positives_only():
    metric = DetMetric()
    metric.update([[C]], [[A]], [[False]])
    out = metric.compute()
    assert (float(out["precision"]), float(out["recall"]), float(out["hmean"])) == (0.0, 0.0, 0.0)
