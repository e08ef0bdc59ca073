"""``lang`` / ``ocr_version`` -> models, as PaddleOCR 3.x maps them (pxtorch: mobile/small sizes)."""

from __future__ import annotations

import pytest

import pxtorch
from pxtorch.pipelines import ocr_model_names
from pxtorch.pipelines.config import PipelineConfigError


@pytest.mark.parametrize(
    ("lang", "version", "expected"),
    [
        (None, None, (None, None)),
        ("ch", None, ("PP-OCRv5_mobile_det", "PP-OCRv5_mobile_rec")),
        ("en", None, ("PP-OCRv5_mobile_det", "PP-OCRv5_mobile_rec")),
        ("japan", None, ("PP-OCRv5_mobile_det", "PP-OCRv5_mobile_rec")),
        (None, "PP-OCRv4", ("PP-OCRv4_mobile_det", "PP-OCRv4_mobile_rec")),
        ("en", "PP-OCRv4", ("PP-OCRv4_mobile_det", "en_PP-OCRv4_mobile_rec")),
        ("ch", "PP-OCRv3", ("PP-OCRv3_mobile_det", "PP-OCRv3_mobile_rec")),
        ("en", "PP-OCRv3", ("PP-OCRv3_mobile_det", "en_PP-OCRv3_mobile_rec")),
        ("fr", None, ("PP-OCRv3_mobile_det", "latin_PP-OCRv3_mobile_rec")),
        ("german", None, ("PP-OCRv3_mobile_det", "latin_PP-OCRv3_mobile_rec")),
        ("ru", None, ("PP-OCRv3_mobile_det", "cyrillic_PP-OCRv3_mobile_rec")),
        ("ar", None, ("PP-OCRv3_mobile_det", "arabic_PP-OCRv3_mobile_rec")),
        ("hi", None, ("PP-OCRv3_mobile_det", "devanagari_PP-OCRv3_mobile_rec")),
        ("korean", None, ("PP-OCRv3_mobile_det", "korean_PP-OCRv3_mobile_rec")),
        ("ta", None, ("PP-OCRv3_mobile_det", "ta_PP-OCRv3_mobile_rec")),
        ("ch", "PP-OCRv6", ("PP-OCRv6_small_det", "PP-OCRv6_small_rec")),
        ("fr", "pp_ocrv6", ("PP-OCRv6_small_det", "PP-OCRv6_small_rec")),
    ],
)
def test_paddleocr_language_mapping(lang, version, expected) -> None:
    assert ocr_model_names(lang, version) == expected


@pytest.mark.parametrize(
    ("lang", "version", "message"),
    [
        ("korean", "PP-OCRv5", "PP-OCRv5 serves lang in"),
        ("fr", "PP-OCRv4", "PP-OCRv4 serves lang 'ch' and 'en'"),
        ("pi", "PP-OCRv6", "PP-OCRv6 serves lang"),
        ("klingon", None, "unknown lang 'klingon'"),
        ("ch", "PP-OCRv9", "ocr_version must be one of PP-OCRv3, PP-OCRv4, PP-OCRv5, PP-OCRv6"),
    ],
)
def test_unsupported_combinations_are_clear_errors(lang, version, message) -> None:
    with pytest.raises(PipelineConfigError, match=message):
        ocr_model_names(lang, version)


def test_a_language_without_a_registered_model_names_the_close_matches() -> None:
    with pytest.raises(pxtorch.UnknownModelError, match="latin_PP-OCRv3_mobile_rec"):
        pxtorch.pipeline("OCR", lang="fr", device="cpu")


@pytest.mark.parametrize(("lang", "version"), [(None, "PP-OCRv6"), ("en", "PP-OCRv4"), ("en", None)])
def test_language_choices_run_offline_on_real_scenes(lang, version) -> None:
    """The chosen models load from the offline wheels and read the boarding pass's printed English."""
    from .conftest import shared_image_dir

    scene = shared_image_dir("scenes") / "00006737.jpg"
    ocr = pxtorch.pipeline("OCR", lang=lang, ocr_version=version, device="cpu")
    det, rec = ocr_model_names(lang, version)
    assert ocr.text_det.model.pretrained_cfg.paddlex_name == det
    assert ocr.text_rec.model.pretrained_cfg.paddlex_name == rec
    res = ocr(str(scene))[0]
    assert len(res["rec_texts"]) >= 20
    joined = " ".join(res["rec_texts"]).upper().replace(" ", "")
    assert "BOARDINGPASS" in joined and "ZHANGQIWEI" in joined
