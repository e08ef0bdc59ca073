"""``doc_text_orientation`` module pipeline and ``doc_preprocessor`` pipeline (PaddleX result keys).

Ground truth is the rotation applied here: each real scene turned clockwise by 0/90/180/270 degrees
(``np.rot90(img, -k)``) must be labelled ``90 * k`` (PaddleX: the angle the page is rotated back by,
counter-clockwise), and the preprocessor must return the upright scene bit for bit. The rotation back is
checked against scipy's ``ndimage.rotate(img, angle, reshape=True)``, the call PaddleX makes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from pxtorch.hub import WeightsNotFoundError
from pxtorch.pipelines.doc_preprocessor import DocPreprocessorPipeline, rotate_back
from pxtorch.pipelines.doc_text_orientation import DocTextOrientationPipeline
from pxtorch.processing.image import read_image

from .conftest import shared_image_dir

_PIPES: dict[str, object] = {}


def _orientation() -> DocTextOrientationPipeline:
    if "ori" not in _PIPES:
        _PIPES["ori"] = DocTextOrientationPipeline(device="cpu", batch_size=8)
    return _PIPES["ori"]


def _preprocessor() -> DocPreprocessorPipeline:
    if "pre" not in _PIPES:
        _PIPES["pre"] = DocPreprocessorPipeline(use_doc_unwarping=False, device="cpu")
    return _PIPES["pre"]


def _scenes() -> list[np.ndarray]:
    return [read_image(p) for p in sorted(shared_image_dir("scenes").iterdir())]


def test_rotate_back_is_paddlex_scipy_rotation():
    from scipy import ndimage

    img = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    for angle in (0, 90, 180, 270):
        np.testing.assert_array_equal(rotate_back(img, angle), ndimage.rotate(img, angle, reshape=True))
    with pytest.raises(ValueError, match="angle"):
        rotate_back(img, 45)


def test_orientation_of_rotated_scenes():
    """Measured: 76 of 76 (19 scenes x 4 angles). A scene can be ambiguous, so 90% is required."""
    pipe = _orientation()
    scenes = _scenes()
    correct = 0
    for k in range(4):
        rotated = [np.ascontiguousarray(np.rot90(im, -k)) for im in scenes]
        results = pipe(rotated)
        for res in results:
            assert set(res.json["res"]) == {"input_path", "page_index", "class_ids", "scores", "label_names"}
            assert res["label_names"][0] == pipe.labels[int(res["class_ids"][0])]
        correct += sum(int(r["label_names"][0]) == 90 * k for r in results)
    assert correct >= 0.9 * 4 * len(scenes), f"{correct} of {4 * len(scenes)} orientations right"


def test_topk_results():
    pipe = _orientation()
    img = _scenes()[0]
    (res,) = pipe(img, topk=4)
    assert sorted(res["label_names"]) == sorted(pipe.labels)
    assert np.all(np.diff(res["scores"]) <= 0) and abs(float(res["scores"].sum()) - 1) < 1e-3
    with pytest.raises(ValueError, match="topk"):
        pipe(img, topk=5)


def test_preprocessor_restores_upright_page(tmp_path):
    pre = _preprocessor()
    scenes = _scenes()[:4]
    for k in (1, 2, 3):
        rotated = [np.ascontiguousarray(np.rot90(im, -k)) for im in scenes]
        for up, res in zip(scenes, pre(rotated), strict=True):
            assert res["model_settings"] == {"use_doc_orientation_classify": True, "use_doc_unwarping": False}
            if res["angle"] == 90 * k:  # classified right: the page comes back exactly
                np.testing.assert_array_equal(res["output_img"], up)
    res = pre(scenes[0])[0]
    assert set(res.json["res"]) == {"input_path", "page_index", "model_settings", "angle"}
    assert set(res.img) == {"preprocessed_img"}
    res.save_all(tmp_path)
    saved = json.loads(next(tmp_path.glob("*_res.json")).read_text(encoding="utf-8"))
    assert saved["angle"] == res["angle"]


def test_process_api_and_disabled_step():
    pre = _preprocessor()
    img = _scenes()[1]
    turned = np.ascontiguousarray(np.rot90(img, -2))
    (angle, out), (off_angle, off_out) = pre.process([turned], True, False) + pre.process([turned], False, False)
    assert angle == 180 and np.array_equal(out, img)
    assert off_angle == -1 and np.array_equal(off_out, turned)
    (res,) = pre(turned, use_doc_orientation_classify=False)
    assert res["angle"] == -1 and res["model_settings"]["use_doc_orientation_classify"] is False
    with pytest.raises(ValueError, match="UVDoc"):
        pre(turned, use_doc_unwarping=True)


def test_unwarping_offline_names_uvdoc():
    """No UVDoc weights offline: asking for unwarping fails at construction, naming the model and the fix."""
    with pytest.raises(WeightsNotFoundError, match="UVDoc") as err:
        DocPreprocessorPipeline(device="cpu")  # PaddleX's config: both steps on
    assert "model_dir" in str(err.value) or "Hub" in str(err.value)
