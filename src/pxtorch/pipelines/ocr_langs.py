"""PaddleOCR's ``lang`` / ``ocr_version`` -> detection and recognition model names.

Facts from PaddleOCR 3.x ``paddleocr/_pipelines/ocr.py`` (``_get_ocr_model_names``) and
``_utils/langs.py``: language groups for the PP-OCRv3 multilingual recognisers, the PP-OCRv4 ``ch``/``en``
pair, the PP-OCRv5 family (``ch``, ``chinese_cht``, ``en``, ``japan``) and one multilingual PP-OCRv6.
pxtorch picks the *mobile* (v3-v5) or *small* (v6) size where PaddleOCR picks server/medium: those are
the sizes whose official weights install offline. Every other size stays available by model name
(``text_detection_model_name=...``).
"""

from __future__ import annotations

from .config import PipelineConfigError

__all__ = ["OCR_VERSIONS", "ocr_model_names", "v3_rec_language"]

OCR_VERSIONS = ("PP-OCRv3", "PP-OCRv4", "PP-OCRv5", "PP-OCRv6")

LATIN_LANGS = frozenset(
    [
        "af",
        "az",
        "bs",
        "cs",
        "cy",
        "da",
        "de",
        "es",
        "et",
        "fr",
        "ga",
        "hr",
        "hu",
        "id",
        "is",
        "it",
        "ku",
        "la",
        "lt",
        "lv",
        "mi",
        "ms",
        "mt",
        "nl",
        "no",
        "oc",
        "pi",
        "pl",
        "pt",
        "ro",
        "rs_latin",
        "sk",
        "sl",
        "sq",
        "sv",
        "sw",
        "tl",
        "tr",
        "uz",
        "vi",
        "french",
        "german",
        "fi",
        "eu",
        "gl",
        "lb",
        "rm",
        "ca",
        "qu",
    ]
)
ARABIC_LANGS = frozenset(["ar", "fa", "ug", "ur", "ps", "ku", "sd", "bal"])
CYRILLIC_LANGS = frozenset(
    [
        "ru",
        "rs_cyrillic",
        "be",
        "bg",
        "uk",
        "mn",
        "abq",
        "ady",
        "kbd",
        "ava",
        "dar",
        "inh",
        "che",
        "lbe",
        "lez",
        "tab",
        "kk",
        "ky",
        "tg",
        "mk",
        "tt",
        "cv",
        "ba",
        "mhr",
        "mo",
        "udm",
        "kv",
        "os",
        "bua",
        "xal",
        "tyv",
        "sah",
        "kaa",
    ]
)
DEVANAGARI_LANGS = frozenset(["hi", "mr", "ne", "bh", "mai", "ang", "bho", "mah", "sck", "new", "gom", "sa", "bgc"])
# languages with a PP-OCRv3 recogniser of their own
V3_SPECIFIC_LANGS = frozenset(["ch", "en", "korean", "japan", "chinese_cht", "te", "ka", "ta"])
V5_LANGS = ("ch", "chinese_cht", "en", "japan")
V6_LANGS = frozenset({"ch", "en", "japan"} | (LATIN_LANGS - {"pi"}))


def v3_rec_language(lang: str) -> str | None:
    """The PP-OCRv3 recogniser family of ``lang`` (``"latin"``, ``"arabic"``, ..., or the language itself)."""
    for group, langs in (
        ("latin", LATIN_LANGS),
        ("arabic", ARABIC_LANGS),
        ("cyrillic", CYRILLIC_LANGS),
        ("devanagari", DEVANAGARI_LANGS),
    ):
        if lang in langs:
            return group
    return lang if lang in V3_SPECIFIC_LANGS else None


def _normalise_version(ocr_version: str) -> str:
    key = ocr_version.replace("-", "").replace("_", "").lower()
    for v in OCR_VERSIONS:
        if v.replace("-", "").lower() == key:
            return v
    raise PipelineConfigError(f"ocr_version must be one of {', '.join(OCR_VERSIONS)}, got {ocr_version!r}")


def ocr_model_names(lang: str | None, ocr_version: str | None) -> tuple[str | None, str | None]:
    """``(det_model, rec_model)`` for ``lang``/``ocr_version``; ``(None, None)`` keeps the pipeline config.

    Without ``ocr_version``: PP-OCRv5 for its four languages, else PP-OCRv3 (PaddleOCR 3.0's rule).
    Raises :class:`PipelineConfigError` for a language the version does not serve.
    """
    if lang is None and ocr_version is None:
        return None, None
    lang = lang or "ch"
    if ocr_version is None:
        if lang in V5_LANGS:
            ocr_version = "PP-OCRv5"
        elif v3_rec_language(lang) is not None:
            ocr_version = "PP-OCRv3"
        else:
            raise PipelineConfigError(f"unknown lang {lang!r}: no PaddleOCR recogniser serves it")
    version = _normalise_version(ocr_version)
    if version == "PP-OCRv6":
        if lang not in V6_LANGS:
            raise PipelineConfigError(f"PP-OCRv6 serves lang 'ch', 'en', 'japan' and the Latin languages, got {lang!r}")
        return "PP-OCRv6_small_det", "PP-OCRv6_small_rec"
    if version == "PP-OCRv5":
        if lang not in V5_LANGS:
            raise PipelineConfigError(f"PP-OCRv5 serves lang in {V5_LANGS}, got {lang!r}")
        return "PP-OCRv5_mobile_det", "PP-OCRv5_mobile_rec"
    if version == "PP-OCRv4":
        if lang == "ch":
            return "PP-OCRv4_mobile_det", "PP-OCRv4_mobile_rec"
        if lang == "en":
            return "PP-OCRv4_mobile_det", "en_PP-OCRv4_mobile_rec"
        raise PipelineConfigError(f"PP-OCRv4 serves lang 'ch' and 'en', got {lang!r}")
    rec_lang = v3_rec_language(lang)
    if rec_lang is None:
        raise PipelineConfigError(f"PP-OCRv3 has no recogniser for lang {lang!r}")
    return "PP-OCRv3_mobile_det", "PP-OCRv3_mobile_rec" if rec_lang == "ch" else f"{rec_lang}_PP-OCRv3_mobile_rec"
