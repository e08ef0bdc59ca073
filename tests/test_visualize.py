"""OCR result pictures (pxtorch.processing.visualize): layout, colours, glyphs, fonts. Synthetic images only."""

from __future__ import annotations

import random

import cv2
import numpy as np
import pytest
from PIL import ImageFont

from pxtorch.processing import visualize
from pxtorch.processing.visualize import (
    FONT_ENV_VARS,
    FontNotFoundError,
    draw_det_boxes,
    draw_ocr,
    find_font,
    font_chain,
    missing_glyphs,
)

H, W = 120, 240
NOT_A_CHAR = chr(0x10FFFD)  # private use, plane 16: in no font of the chain -> drawn as .notdef

SAMPLES = {
    "zh-Hans": "登机牌",
    "zh-Hant": "繁體臺灣",
    "kana": "ひらがなカタカナ",
    "hangul": "한국어",
    "latin": "Hello àçéñøßŁő",
    "greek": "Ελληνικά",
    "cyrillic": "Кириллица",
    "arabic": "العربية",
    "devanagari": "देवनागरी",
}


@pytest.fixture(autouse=True)
def _no_font_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in FONT_ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def noise_image(h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    """HxWx3 uint8 BGR noise in 60..200, so that neither blending nor black text can hide."""
    return np.random.default_rng(seed).integers(60, 200, (h, w, 3)).astype(np.uint8)


def rect(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.int32)


def box_mask(poly: np.ndarray, grow: int = 0) -> np.ndarray:
    """bool HxW: inside the polygon, eroded (grow < 0) or dilated (grow > 0) by |grow| px."""
    mask = np.zeros((H, W), np.uint8)
    cv2.fillPoly(mask, [poly.reshape(-1, 1, 2).astype(np.int32)], 1)
    if grow:
        kernel = np.ones((2 * abs(grow) + 1,) * 2, np.uint8)
        mask = cv2.dilate(mask, kernel) if grow > 0 else cv2.erode(mask, kernel)
    return mask.astype(bool)


def halves(img) -> tuple[np.ndarray, np.ndarray]:
    arr = np.asarray(img)
    return arr[:, :W].astype(int), arr[:, W:].astype(int)


def ink(arr: np.ndarray) -> np.ndarray:
    """bool: near-black pixels (text is drawn in black; no box colour used here is that dark)."""
    return arr.max(axis=-1) < 64


def paddlex_colors(n: int) -> list[tuple[int, int, int]]:
    """The colours PaddleX draws: random.seed(0), then three randint(0, 255) per box."""
    state = random.getstate()
    random.seed(0)
    colors = [(random.randint(0, 255), random.randint(0, 255), random.randint(0, 255)) for _ in range(n)]
    random.setstate(state)
    return colors


def test_colors_used_here_are_not_ink() -> None:
    assert not any(max(c) < 64 for c in paddlex_colors(4))


def test_size_mode_and_no_boxes() -> None:
    img = noise_image()
    out = draw_ocr(img, [], [])
    assert out.mode == "RGB" and out.size == (2 * W, H)
    left, right = halves(out)
    np.testing.assert_array_equal(left, img[:, :, ::-1])  # BGR in, RGB out
    assert (right == 255).all()


def test_left_half_blends_box_colour_only_inside_boxes() -> None:
    img = noise_image()
    polys = [rect(10, 10, 110, 50), np.array([[130, 20], [230, 35], [225, 75], [125, 60]], np.int32)]
    out = draw_ocr(img, polys, ["登机牌", "Hello"])
    left, _ = halves(out)
    rgb = img[:, :, ::-1].astype(int)
    outside = ~np.logical_or.reduce([box_mask(p, 2) for p in polys])
    np.testing.assert_array_equal(left[outside], rgb[outside])
    for poly, color in zip(polys, paddlex_colors(2), strict=True):
        inside = box_mask(poly, -2)
        expected = (rgb[inside] + np.array(color)) / 2
        assert np.abs(left[inside] - expected).max() <= 1


def test_right_half_text_inside_boxes_and_outline_colour() -> None:
    polys = [rect(10, 10, 110, 50), rect(20, 70, 220, 110)]
    out = draw_ocr(noise_image(), polys, ["登机牌", "Hello world"])
    _, right = halves(out)
    outside = ~np.logical_or.reduce([box_mask(p, 2) for p in polys])
    assert (right[outside] == 255).all()
    for poly, color in zip(polys, paddlex_colors(2), strict=True):
        assert ink(right)[box_mask(poly, -2)].sum() > 100
        x0, y0 = poly[0]
        assert tuple(right[y0, x0]) == color  # box outline, RGB order
        assert tuple(right[poly[2][1], poly[2][0]]) == color


@pytest.mark.parametrize("text", ["登机牌", "Hey"])
def test_draw_ocr_draws_glyphs_not_tofu(text: str) -> None:
    poly = [rect(10, 10, 200, 60)]
    _, real = halves(draw_ocr(noise_image(), poly, [text]))
    _, tofu = halves(draw_ocr(noise_image(), poly, [NOT_A_CHAR * len(text)]))
    assert ink(real).sum() > 50 and ink(tofu).sum() > 50
    assert (ink(real) != ink(tofu)).sum() > 50


@pytest.mark.parametrize("script", sorted(SAMPLES))
def test_find_font_has_real_glyphs(script: str) -> None:
    text = SAMPLES[script]
    path = find_font(text)
    assert path.is_file() and path in font_chain()
    assert missing_glyphs(text, path) == ""
    assert missing_glyphs(NOT_A_CHAR, path) == NOT_A_CHAR
    font = ImageFont.truetype(str(path), 48)
    notdef = np.asarray(font.getmask(NOT_A_CHAR))
    assert notdef.any()
    for char in text.replace(" ", ""):
        glyph = np.asarray(font.getmask(char))
        assert glyph.any(), f"{char!r} drew nothing with {path.name}"
        same = glyph.shape == notdef.shape and np.array_equal(glyph, notdef)
        assert not same, f"{char!r} drew the .notdef glyph of {path.name}"


def test_find_font_fallback_order() -> None:
    chain = font_chain()
    assert chain[0].name.startswith("NotoSansCJK")
    assert find_font() == chain[0] and find_font("") == chain[0]
    assert find_font("中文 abc") == chain[0]
    assert missing_glyphs("中文ά", chain[0]) == "ά"  # Noto Sans CJK has no Greek with tonos
    assert find_font("ά") != chain[0]
    assert find_font("中文ά") == chain[0]  # no font has all: the one with the most
    polish = "ąćęłżžš"
    assert missing_glyphs(polish, chain[0]) == polish
    assert find_font(polish + "中") == find_font(polish) != chain[0]
    assert missing_glyphs("a\u200db\n", chain[0]) == ""  # format and control characters need no glyph


def test_cjk_face_is_simplified_chinese() -> None:
    path = str(font_chain()[0])
    index = visualize._face_index(path)  # SIMFANG, which PaddleX draws with, is a Simplified Chinese font
    assert ImageFont.truetype(path, 20, index=index).getname()[0] == "Noto Sans CJK SC"


def test_font_that_is_no_font_fails_loudly(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    bogus = tmp_path / "bogus.ttf"
    bogus.write_bytes(b"not a font at all")
    with pytest.raises(OSError):
        draw_ocr(noise_image(), [rect(10, 10, 100, 40)], ["abc"], font_path=bogus)
    monkeypatch.setenv("PXTORCH_FONT_PATH", str(bogus))
    with pytest.raises(OSError):
        draw_ocr(noise_image(), [rect(10, 10, 100, 40)], ["abc"])


def test_vertical_text_for_tall_boxes() -> None:
    tall = rect(20, 5, 45, 115)  # h > 2w and h > 30
    _, right = halves(draw_ocr(noise_image(), [tall], ["竖排文字"]))
    rows = np.flatnonzero(ink(right).any(axis=1))
    assert rows.size and rows.max() - rows.min() > 0.6 * 110  # one character under the other
    cols = np.flatnonzero(ink(right).any(axis=0))
    assert cols.min() >= 20 and cols.max() <= 45

    squat = rect(20, 5, 80, 115)  # h < 2w: horizontal, shrunk to the width -> a thin line at the top
    _, right = halves(draw_ocr(noise_image(), [squat], ["竖排文字"]))
    rows = np.flatnonzero(ink(right).any(axis=1))
    assert rows.size and rows.max() - rows.min() < 30


def test_seal_polygon_outline_and_text_strip() -> None:
    angles = np.linspace(np.pi, 2 * np.pi, 12)  # upper half of an ellipse: x 40..200, y 40..100
    arc = np.stack([120 + 80 * np.cos(angles), 100 + 60 * np.sin(angles)], axis=1)
    img = noise_image()
    out = draw_ocr(img, [arc.round().astype(np.int32)], ["印章文字"])
    left, right = halves(out)
    changed = (left != img[:, :, ::-1]).any(axis=-1)
    assert changed[40:46, 110:130].mean() > 0.5  # the 8 px outline at the top of the arc
    assert changed[20:30].sum() == 0 and changed[110:].sum() == 0
    # PaddleX writes seal text into a strip from the middle of the min-area rectangle (y 41..100):
    # top = mean y = 70; bottom = mean of the y *after* that edit + min(20, h/2) = 85 + 20.
    rows = np.flatnonzero(ink(right).any(axis=1))
    cols = np.flatnonzero(ink(right).any(axis=0))
    assert rows.size and rows.min() >= 69 and 98 <= rows.max() <= 106
    assert cols.min() >= 38 and cols.max() <= 202
    # float polygons with more than 4 points draw the same
    out_float = draw_ocr(img, [arc.round()], ["印章文字"])
    np.testing.assert_array_equal(np.asarray(out_float), np.asarray(out))


def test_degenerate_boxes_are_skipped_but_keep_their_colour() -> None:
    good = rect(10, 10, 110, 50)
    polys = [
        np.zeros((4, 2), np.int32),
        rect(5, 5, 5, 60),
        np.array([[1.0, np.nan]] * 4),
        rect(150, 60, 220, 100),
        good,
    ]
    texts = ["x", "line", "nan", "", "ok"]
    img = noise_image()
    left, right = halves(draw_ocr(img, polys, texts))
    rgb = img[:, :, ::-1].astype(int)
    inside = box_mask(good, -2)
    color = paddlex_colors(5)[4]
    assert np.abs(left[inside] - (rgb[inside] + np.array(color)) / 2).max() <= 1
    assert ink(right)[inside].sum() > 50
    assert not ink(right)[box_mask(polys[3], -2)].any()  # empty text: outline only


def test_rejects_non_bgr() -> None:
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        draw_ocr(np.zeros((H, W), np.uint8), [], [])


@pytest.mark.parametrize("env", FONT_ENV_VARS)
def test_env_font_override(monkeypatch: pytest.MonkeyPatch, env: str) -> None:
    cjk = font_chain()[0]
    greek = "Ελληνικά"
    poly = [rect(10, 10, 230, 60)]
    default = np.asarray(draw_ocr(noise_image(), poly, [greek]))
    assert find_font(greek) != cjk
    monkeypatch.setenv(env, str(cjk))
    assert find_font(greek) == cjk and find_font() == cjk
    overridden = np.asarray(draw_ocr(noise_image(), poly, [greek]))
    explicit = np.asarray(draw_ocr(noise_image(), poly, [greek], font_path=cjk))
    np.testing.assert_array_equal(overridden, explicit)
    assert (overridden != default).any()


def test_env_font_override_missing_file(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("PXTORCH_FONT_PATH", str(tmp_path / "nope.ttf"))
    with pytest.raises(FontNotFoundError, match="PXTORCH_FONT_PATH"):
        find_font("abc")
    monkeypatch.delenv("PXTORCH_FONT_PATH")
    monkeypatch.setenv("PADDLE_PDX_LOCAL_FONT_FILE_PATH", str(tmp_path / "nope.ttf"))
    with pytest.warns(UserWarning, match="PADDLE_PDX_LOCAL_FONT_FILE_PATH"):
        assert find_font("abc") == font_chain()[0]  # PaddleX ignores a path that is no file


def test_missing_font_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_package(module: str):
        raise ModuleNotFoundError(module)

    font_chain.cache_clear()
    monkeypatch.setattr(visualize.resources, "files", no_package)
    try:
        with pytest.raises(FontNotFoundError, match="pip install noto-cjk-sans-otc"):
            find_font("abc")
        with pytest.raises(FontNotFoundError):
            draw_ocr(noise_image(), [rect(10, 10, 100, 40)], ["abc"])
    finally:
        monkeypatch.undo()
        font_chain.cache_clear()
    assert font_chain()[0].is_file()


def test_draw_det_boxes_red_outlines() -> None:
    img = noise_image()
    before = img.copy()
    poly = np.array([[20.7, 20.2], [200.9, 20], [200, 90], [20, 90]])
    out = draw_det_boxes(img, [poly])
    np.testing.assert_array_equal(img, before)  # input untouched
    arr = np.asarray(out).astype(int)
    assert out.mode == "RGB" and out.size == (W, H)
    assert tuple(arr[20, 100]) == (255, 0, 0) and tuple(arr[21, 100]) == (255, 0, 0)  # 2 px thick
    assert tuple(arr[55, 200]) == (255, 0, 0)
    edge = np.zeros((H, W), np.uint8)
    cv2.polylines(edge, [poly.astype(int).reshape(-1, 1, 2).astype(np.int32)], True, 1, 2)
    untouched = ~cv2.dilate(edge, np.ones((3, 3), np.uint8)).astype(bool)
    np.testing.assert_array_equal(arr[untouched], img[:, :, ::-1][untouched])
    assert (arr[edge.astype(bool)] == (255, 0, 0)).all()
