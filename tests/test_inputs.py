"""Input expansion (``pxtorch.processing.inputs``): paths, directories, PDFs, URLs, arrays, PIL, bytes."""

from __future__ import annotations

import http.server
import io
import re
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import pytest
from PIL import Image

from pxtorch.processing import image as image_module
from pxtorch.processing.image import decode_image
from pxtorch.processing.inputs import IMAGE_EXTENSIONS, PDF_SCALE, InputItem, is_url, iter_inputs

BGR_PIXEL = (10, 20, 200)  # a reddish pixel, written in BGR order


def _png(path: Path, shape: tuple[int, int] = (4, 6), bgr: tuple[int, int, int] = BGR_PIXEL) -> Path:
    img = np.zeros((*shape, 3), np.uint8)
    img[:] = bgr
    assert cv2.imwrite(str(path), img)
    return path


def _png_bytes(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG with a valid IHDR for ``width x height`` (8-bit RGB) and no pixel data."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def _pdf_bytes(colours_rgb: list[tuple[int, int, int]], size: tuple[int, int] = (100, 50)) -> bytes:
    pages = [Image.new("RGB", size, c) for c in colours_rgb]
    buf = io.BytesIO()
    pages[0].save(buf, "PDF", save_all=True, append_images=pages[1:], resolution=72.0)
    return buf.getvalue()


def _one(inputs: object, **kwargs: object) -> InputItem:
    items = list(iter_inputs(inputs, **kwargs))
    assert len(items) == 1, items
    return items[0]


def _ok(item: InputItem) -> np.ndarray:
    assert item.error is None, item.error
    assert item.image is not None and item.image.dtype == np.uint8 and item.image.ndim == 3
    assert item.image.shape[2] == 3
    return item.image


# --------------------------------------------------------------------------- paths and directories


def test_single_path_str_and_pathlib(tmp_path):
    path = _png(tmp_path / "a.png")
    for given in (str(path), path):
        item = _one(given)
        img = _ok(item)
        assert img.shape == (4, 6, 3) and tuple(img[0, 0]) == BGR_PIXEL
        assert item.input_path == str(path) and isinstance(item.input_path, str)
        assert item.page_index is None


def test_directory_sorted_images_only_not_recursive(tmp_path):
    _png(tmp_path / "b.png", bgr=(2, 2, 2))
    _png(tmp_path / "a.JPG", bgr=(1, 1, 1))  # suffixes are case-insensitive
    _png(tmp_path / "c.bmp", bgr=(3, 3, 3))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    _png(tmp_path / "sub" / "0.png")
    items = list(iter_inputs(tmp_path))
    assert [Path(i.input_path).name for i in items] == ["a.JPG", "b.png", "c.bmp"]
    assert [i.input_path for i in items] == [str(tmp_path / n) for n in ("a.JPG", "b.png", "c.bmp")]
    assert [int(_ok(i)[0, 0, 0]) for i in items] == [1, 2, 3]
    assert set(IMAGE_EXTENSIONS) == {".jpg", ".jpeg", ".png", ".bmp"}


def test_directory_pdf_pages_are_expanded(tmp_path):
    (tmp_path / "b.pdf").write_bytes(_pdf_bytes([(255, 255, 255), (0, 0, 0)]))
    _png(tmp_path / "a.png")
    items = list(iter_inputs(str(tmp_path)))
    assert [(Path(i.input_path).name, i.page_index) for i in items] == [("a.png", None), ("b.pdf", 0), ("b.pdf", 1)]


def test_empty_directory_is_one_error(tmp_path):
    (tmp_path / "readme.md").write_text("nothing to see")
    item = _one(tmp_path)
    assert item.image is None and item.input_path == str(tmp_path)
    assert str(tmp_path) in item.error and "no image" in item.error


def test_list_keeps_good_items_and_order(tmp_path):
    good1 = _png(tmp_path / "good1.png", bgr=(1, 1, 1))
    good2 = _png(tmp_path / "good2.jpg", bgr=(0, 0, 0))
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    (tmp_path / "zero.jpg").write_bytes(b"")
    names = ["good1.png", "missing.jpg", "corrupt.png", "zero.jpg", "good2.jpg"]
    items = list(iter_inputs([str(tmp_path / n) for n in names]))
    assert [i.input_path for i in items] == [str(tmp_path / n) for n in names]
    assert _ok(items[0])[0, 0, 0] == 1 and _ok(items[4]).shape == (4, 6, 3)
    for item, reason in zip(items[1:4], ["no such file", "not a decodable image", "empty file"], strict=True):
        assert item.image is None and item.page_index is None
        assert item.error.startswith(item.input_path + ":") and reason in item.error
        assert "\n" not in item.error
    assert str(good1) == items[0].input_path and str(good2) == items[4].input_path


def test_other_schemes_are_errors_not_fetched(tmp_path):
    path = _png(tmp_path / "a.png")
    for url in (path.as_uri(), "ftp://example.com/a.png"):
        item = _one(url)
        assert item.image is None and item.input_path == url and "unsupported URL scheme" in item.error


def test_is_url():
    assert is_url("http://example.com/a.png") and is_url("HTTPS://example.com")
    assert not is_url("file:///tmp/a.png") and not is_url("ftp://x/y") and not is_url("a.png")
    assert not is_url("http://") and not is_url(b"http://example.com") and not is_url(None)


# --------------------------------------------------------------------------- decoding rules


def test_tiny_image_is_kept(tmp_path):
    assert _ok(_one(_png(tmp_path / "dot.png", shape=(1, 1)))).shape == (1, 1, 3)
    assert _ok(_one(np.zeros((1, 1, 3), np.uint8))).shape == (1, 1, 3)


def test_header_over_pixel_limit_is_rejected_without_decoding(tmp_path, monkeypatch):
    def no_decoding(*args, **kwargs):
        raise AssertionError("cv2.imdecode must not be reached")

    monkeypatch.setattr(image_module.cv2, "imdecode", no_decoding)
    (tmp_path / "bomb.png").write_bytes(_png_header_only(20_000, 20_000))
    item = _one(tmp_path / "bomb.png", max_pixels=10_000 * 10_000)
    assert item.image is None and "bomb.png" in item.error and "limit" in item.error
    (tmp_path / "bigger.png").write_bytes(_png_header_only(20_000, 20_001))  # over the default limit
    item = _one(tmp_path / "bigger.png")
    assert item.image is None and "limit" in item.error
    assert "limit" in _one(_png_header_only(30_000, 30_000)).error  # bytes input too


def test_header_above_pillow_bomb_limit_but_below_ours_is_decoded(monkeypatch):
    # 15000x15000 = 225 Mpx is over Pillow's own 2 x 89 Mpx bomb limit, under our 400 Mpx default
    sentinel = np.zeros((1, 1, 3), np.uint8)
    monkeypatch.setattr(image_module.cv2, "imdecode", lambda *a, **k: sentinel)
    assert decode_image(_png_header_only(15_000, 15_000), "x.png") is sentinel


def test_16bit_png_is_shifted_like_imread_color(tmp_path):
    grey16 = np.array([[0, 255, 256, 40000, 65535]], np.uint16)
    assert cv2.imwrite(str(tmp_path / "g16.png"), grey16)
    img = _ok(_one(tmp_path / "g16.png"))
    np.testing.assert_array_equal(img[0, :, 0], [0, 0, 1, 156, 255])
    np.testing.assert_array_equal(img, cv2.imread(str(tmp_path / "g16.png"), cv2.IMREAD_COLOR))


def test_exif_orientation_is_applied_like_imread_color(tmp_path):
    im = Image.new("RGB", (8, 2), (255, 0, 0))
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    im.save(tmp_path / "rotated.jpg", exif=exif.tobytes())
    img = _ok(_one(tmp_path / "rotated.jpg"))
    assert img.shape == (8, 2, 3)  # PaddleX's cv2.imread(IMREAD_COLOR) honours EXIF orientation
    assert img.shape == cv2.imread(str(tmp_path / "rotated.jpg"), cv2.IMREAD_COLOR).shape


def test_bytes_input_image_and_pdf():
    img = np.zeros((3, 5, 3), np.uint8)
    img[:] = BGR_PIXEL
    item = _one(_png_bytes(img))
    assert item.input_path is None and item.page_index is None
    np.testing.assert_array_equal(_ok(item), img)
    assert _one(bytearray(_png_bytes(img))).error is None
    bad = _one(b"definitely not an image")
    assert bad.image is None and "not a decodable image" in bad.error and "bytes input #0" in bad.error
    pages = list(iter_inputs(_pdf_bytes([(0, 0, 0)] * 2)))
    assert [p.page_index for p in pages] == [0, 1] and all(p.error is None for p in pages)


# --------------------------------------------------------------------------- numpy arrays


def test_numpy_layouts_to_bgr():
    grey = np.full((2, 3), 7, np.uint8)
    np.testing.assert_array_equal(_ok(_one(grey)), np.full((2, 3, 3), 7))
    np.testing.assert_array_equal(_ok(_one(grey[..., None])), np.full((2, 3, 3), 7))
    bgr = np.zeros((2, 3, 3), np.uint8)
    bgr[:] = BGR_PIXEL
    out = _ok(_one(bgr))
    np.testing.assert_array_equal(out, bgr)  # 3 channels are BGR already (PaddleX's convention)
    bgra = np.zeros((2, 3, 4), np.uint8)
    bgra[:] = (*BGR_PIXEL, 0)
    np.testing.assert_array_equal(_ok(_one(bgra)), bgr)  # alpha dropped, not composited
    item = _one(bgr)
    assert item.input_path is None and item.page_index is None


def test_numpy_dtype_rules():
    np.testing.assert_array_equal(_ok(_one(np.full((2, 2), 0x1234, np.uint16)))[..., 0], np.full((2, 2), 0x12))
    np.testing.assert_array_equal(_ok(_one(np.full((2, 2), 0x1234, ">u2")))[..., 0], np.full((2, 2), 0x12))
    np.testing.assert_array_equal(_ok(_one(np.array([[0.0, 0.5, 1.0]], np.float32)))[0, :, 0], [0, 128, 255])
    np.testing.assert_array_equal(_ok(_one(np.array([[True, False]])))[0, :, 1], [255, 0])
    np.testing.assert_array_equal(_ok(_one(np.array([[0, 200]], np.int64)))[0, :, 2], [0, 200])
    for bad, match in [
        (np.array([[0.0, 2.0]]), r"\[0, 1\]"),
        (np.array([[np.nan]], np.float32), "NaN"),
        (np.array([[-1, 300]], np.int32), r"\[0, 255\]"),
        (np.array([["a"]]), "dtype"),
    ]:
        item = _one(bad)
        assert item.image is None and "array input #0" in item.error
        assert re.search(match, item.error), item.error


def test_numpy_bad_shapes_are_errors_and_do_not_stop_the_list():
    good = np.zeros((2, 2, 3), np.uint8)
    bad = [
        np.zeros((0, 5, 3), np.uint8),
        np.zeros((5,), np.uint8),
        np.zeros((2, 2, 2), np.uint8),
        np.zeros((2, 4, 4, 3), np.uint8),  # a batch-shaped array: PaddleX treats an array as one image
    ]
    items = list(iter_inputs([good, *bad, good]))
    assert len(items) == 6 and items[0].error is None and items[5].error is None
    assert all(i.image is None and i.error for i in items[1:5])
    assert "empty" in items[1].error and "shape (5,)" in items[2].error and "channels" in items[3].error
    assert "pass a list" in items[4].error and "array input #4" in items[4].error


# --------------------------------------------------------------------------- PIL


def test_pil_modes_to_bgr_channel_order():
    r, g, b = 200, 20, 10
    rgb = Image.new("RGB", (3, 2), (r, g, b))
    assert tuple(_ok(_one(rgb))[1, 2]) == (b, g, r)
    assert tuple(_ok(_one(Image.new("RGBA", (3, 2), (r, g, b, 0))))[0, 0]) == (b, g, r)
    assert tuple(_ok(_one(Image.new("L", (3, 2), 77)))[0, 0]) == (77, 77, 77)
    palette = Image.new("P", (3, 2), 1)
    palette.putpalette([0, 0, 0, r, g, b])
    assert tuple(_ok(_one(palette))[0, 0]) == (b, g, r)
    assert tuple(_ok(_one(Image.new("1", (3, 2), 1)))[0, 0]) == (255, 255, 255)
    i16 = Image.fromarray(np.full((2, 3), 0xAB00, np.uint16))
    assert i16.mode.startswith("I;16")
    assert tuple(_ok(_one(i16))[0, 0]) == (0xAB, 0xAB, 0xAB)
    item = _one(rgb)
    assert item.input_path is None and item.page_index is None


# --------------------------------------------------------------------------- PDF


def test_two_page_pdf_yields_pages_in_order(tmp_path):
    path = tmp_path / "doc.pdf"
    path.write_bytes(_pdf_bytes([(255, 0, 0), (0, 0, 255)], size=(100, 50)))
    items = list(iter_inputs(str(path)))
    assert [i.page_index for i in items] == [0, 1]
    assert all(i.input_path == str(path) for i in items)
    first, second = (_ok(i) for i in items)
    assert first.shape == (round(50 * PDF_SCALE), round(100 * PDF_SCALE), 3) and PDF_SCALE == 2.0
    centre = (first.shape[0] // 2, first.shape[1] // 2)
    assert np.abs(first[centre].astype(int) - (0, 0, 255)).max() < 8  # red page, BGR order
    assert np.abs(second[centre].astype(int) - (255, 0, 0)).max() < 8  # blue page


def test_pdf_options_page_cap_and_pixel_limit(tmp_path):
    path = tmp_path / "doc.pdf"
    path.write_bytes(_pdf_bytes([(0, 0, 0)] * 3))
    assert [i.page_index for i in iter_inputs(path, max_pdf_pages=2)] == [0, 1]
    assert _ok(next(iter(iter_inputs(path, pdf_scale=1.0)))).shape == (50, 100, 3)
    items = list(iter_inputs(path, max_pixels=100 * 50))  # 200x100 at scale 2 is over the limit
    assert [i.page_index for i in items] == [0, 1, 2] and all("limit" in i.error for i in items)


def test_corrupt_and_empty_pdf_are_single_errors(tmp_path):
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    (tmp_path / "empty.pdf").write_bytes(b"")
    good = _png(tmp_path / "z.png")
    items = list(iter_inputs([tmp_path / "bad.pdf", tmp_path / "empty.pdf", good]))
    assert len(items) == 3
    assert items[0].image is None and "bad.pdf" in items[0].error and "PDF" in items[0].error
    assert items[1].image is None and "empty.pdf: empty file" in items[1].error
    assert items[2].error is None


# --------------------------------------------------------------------------- URLs


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, str, bytes, bool]]] = {}

    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(1.0)
        if self.path == "/to-ftp":
            self.send_response(302)
            self.send_header("Location", "ftp://127.0.0.1:9/x.png")  # urllib alone would follow it
            self.end_headers()
            return
        status, content_type, body, send_length = self.routes.get(self.path, (404, "text/plain", b"nope", True))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if send_length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(monkeypatch) -> Iterator[str]:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    img = np.zeros((3, 4, 3), np.uint8)
    img[:] = BGR_PIXEL
    png = _png_bytes(img)
    _Handler.routes = {
        "/img.png": (200, "image/png", png, True),
        "/img-no-suffix": (200, "image/png", png, True),
        "/doc": (200, "application/pdf", _pdf_bytes([(0, 0, 0), (255, 255, 255)]), True),
        "/not-a-pdf": (200, "application/pdf; charset=binary", b"garbage", True),
        "/not-a.pdf": (200, "application/octet-stream", b"garbage", True),
        "/big.png": (200, "image/png", png + b"\0" * 5000, True),
        "/big-stream.png": (200, "image/png", png + b"\0" * 5000, False),
    }
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_url_image_and_pdf(server):
    item = _one(f"{server}/img.png", url_timeout=5)
    assert item.input_path == f"{server}/img.png" and item.page_index is None
    assert tuple(_ok(item)[0, 0]) == BGR_PIXEL
    assert _one(f"{server}/img-no-suffix").error is None
    pages = list(iter_inputs(f"{server}/doc"))  # type from Content-Type, not the URL
    assert [(p.input_path, p.page_index) for p in pages] == [(f"{server}/doc", 0), (f"{server}/doc", 1)]
    assert _ok(pages[0]).mean() < 10 and _ok(pages[1]).mean() > 245


def test_url_errors(server):
    missing = _one(f"{server}/missing.png")
    assert missing.image is None and missing.input_path == f"{server}/missing.png" and "404" in missing.error
    up_front = _one(f"{server}/big.png", max_download_bytes=1000)  # refused on its Content-Length
    assert up_front.image is None and f"download of {len(_Handler.routes['/big.png'][2])} bytes" in up_front.error
    streamed = _one(f"{server}/big-stream.png", max_download_bytes=1000)  # no length: cut while reading
    assert streamed.image is None and "download is over the 1000 byte limit" in streamed.error
    assert _one(f"{server}/big-stream.png", max_download_bytes=10_000).error is None  # the limit was the cause
    for path in ("/not-a-pdf", "/not-a.pdf"):  # a PDF by Content-Type / by suffix, but corrupt
        item = _one(server + path)
        assert item.image is None and "not a readable PDF" in item.error, item.error
    slow = _one(f"{server}/slow", url_timeout=0.2)
    assert slow.image is None and "timed out" in slow.error, slow.error
    redirected = _one(f"{server}/to-ftp")
    assert redirected.image is None and "HTTP 302" in redirected.error, redirected.error
    disabled = _one(f"{server}/img.png", allow_urls=False)
    assert disabled.image is None and "URLs are disabled" in disabled.error


def test_url_error_does_not_stop_the_list(server, tmp_path):
    items = list(iter_inputs([f"{server}/missing.png", _png(tmp_path / "a.png"), f"{server}/img.png"]))
    assert [i.error is None for i in items] == [False, True, True]


# --------------------------------------------------------------------------- argument types


@pytest.mark.parametrize("bad", [42, {"a": 1}, None, 1.5, [np.zeros((2, 2), np.uint8), 3], [[["deep.png"]]]])
def test_bad_argument_type_raises_immediately(bad):
    with pytest.raises(TypeError, match="unsupported"):
        iter_inputs(bad)  # no iteration needed: raised at call time


@pytest.mark.parametrize("option", ["url_timeout", "max_download_bytes", "max_pixels", "max_pdf_pages", "pdf_scale"])
def test_bad_option_value_raises_immediately(option):
    with pytest.raises(ValueError, match=option):
        iter_inputs("a.png", **{option: 0})


def test_nested_list_is_flattened_one_level(tmp_path):
    a, b = _png(tmp_path / "a.png"), _png(tmp_path / "b.png")
    assert [i.input_path for i in iter_inputs([[a], (b, a)])] == [str(a), str(b), str(a)]
