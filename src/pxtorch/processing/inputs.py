"""Input expansion for the pipelines: PaddleX's ``ImageBatchSampler`` + ``ReadImage``, robust to bad input.

:func:`iter_inputs` turns what a user passes to a pipeline (paths, directories, PDFs, URLs, arrays,
PIL images, encoded bytes, or a list of these) into a flat stream of :class:`InputItem`, each an
``HxWx3`` uint8 **BGR** image (PaddleX's channel order) or an error. Problems with one input never
raise: the item carries ``error`` and ``image=None`` so that the other inputs are still processed.

Conventions (PaddleX's, unless marked as a deviation):

* ``input_path`` is the path as given (``str``); for a directory entry ``os.path.join(dir, name)``;
  ``None`` for arrays, PIL images and bytes. *Deviation:* for a URL it is the URL itself, where
  PaddleX gives the path of its download cache file.
* A directory yields its ``.jpg .jpeg .png .bmp`` and ``.pdf`` files (case-insensitive), sorted by
  name. *Deviation:* not recursive (PaddleX walks sub-directories with ``os.walk``).
* A PDF yields one item per page, ``page_index`` 0-based, rendered with pypdfium2 at ``scale=2.0``
  (144 dpi), as PaddleX's ``PDFReaderBackend(zoom=2.0)``; pages come out BGR.
* Files are decoded as ``cv2.imread(path, cv2.IMREAD_COLOR)`` (see :func:`decode_image`).
  *Deviation:* an explicitly named file is decoded whatever its suffix (PaddleX rejects suffixes
  outside its list); a file starting with ``%PDF`` is read as a PDF.
* A numpy array is **one** image, as in PaddleX, so an ``(N, H, W, 3)`` array is rejected: pass a
  list of arrays for several images.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image

from pxtorch.processing.image import MAX_IMAGE_PIXELS, ImageReadError, decode_image

__all__ = [
    "IMAGE_EXTENSIONS",
    "PDF_EXTENSIONS",
    "PDF_SCALE",
    "InputItem",
    "is_url",
    "iter_inputs",
    "to_bgr",
]

logger = logging.getLogger(__name__)

#: Image suffixes picked from a directory (PaddleX ``ImageBatchSampler.IMG_SUFFIX``), compared lower-case.
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp")
#: PDF suffixes picked from a directory (PaddleX ``ImageBatchSampler.PDF_SUFFIX``).
PDF_EXTENSIONS: tuple[str, ...] = (".pdf",)
#: PDF render scale: PaddleX's ``PDFReaderBackend(zoom=2.0)``, i.e. 2 x 72 = 144 dpi.
PDF_SCALE = 2.0

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_CHUNK = 1 << 16


@dataclass
class InputItem:
    """One image of the expanded input, or the reason it could not be produced."""

    image: np.ndarray | None  # HxWx3 uint8 BGR, or None when error is set
    input_path: str | None  # file path / URL as given; None for arrays, PIL images and bytes
    page_index: int | None  # 0-based PDF page, else None
    error: str | None = None  # one-line reason naming the input


def is_url(s: object) -> bool:
    """True for an ``http://`` or ``https://`` URL with a host (the only schemes that are fetched)."""
    if not isinstance(s, str):
        return False
    parts = urllib.parse.urlsplit(s)
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


_Leaf = str | os.PathLike | np.ndarray | Image.Image | bytes | bytearray | memoryview
_LEAF_TYPES = (str, os.PathLike, np.ndarray, Image.Image, bytes, bytearray, memoryview)


def iter_inputs(
    inputs: Any,
    *,
    allow_urls: bool = True,
    url_timeout: float = 30.0,
    max_download_bytes: int = 64 << 20,
    max_pixels: int = MAX_IMAGE_PIXELS,
    max_pdf_pages: int | None = None,
    pdf_scale: float = PDF_SCALE,
) -> Iterator[InputItem]:
    """Expand ``inputs`` into images, in order, one :class:`InputItem` per image or failed input.

    ``inputs`` is a path (file, directory, PDF), an http(s) URL, a numpy array, a PIL image, the
    bytes of an encoded image or PDF, or a list/tuple of these (one level of nested lists is
    flattened). ``max_pixels`` bounds decoded files, downloads and rendered PDF pages (checked
    before decoding); ``max_pdf_pages`` keeps the first pages of each PDF (a warning is logged).

    Raises:
        TypeError: immediately, when ``inputs`` or one of its elements is of an unsupported type.
        ValueError: immediately, for an option out of range (e.g. ``max_pdf_pages=0``).
    """
    leaves = _flatten(inputs)
    for option, value in [
        ("url_timeout", url_timeout),
        ("max_download_bytes", max_download_bytes),
        ("max_pixels", max_pixels),
        ("pdf_scale", pdf_scale),
        ("max_pdf_pages", 1 if max_pdf_pages is None else max_pdf_pages),
    ]:
        if not value > 0:
            raise ValueError(f"{option} must be positive, got {value!r}")
    opts = _Options(allow_urls, url_timeout, max_download_bytes, max_pixels, max_pdf_pages, pdf_scale)
    return _generate(leaves, opts)


@dataclass(frozen=True)
class _Options:
    allow_urls: bool
    url_timeout: float
    max_download_bytes: int
    max_pixels: int
    max_pdf_pages: int | None
    pdf_scale: float


def _flatten(inputs: Any) -> list[_Leaf]:
    """The leaves of ``inputs`` (one level of nesting), checking every type up front."""
    if isinstance(inputs, _LEAF_TYPES):
        return [inputs]
    if not isinstance(inputs, list | tuple):
        raise TypeError(f"unsupported input type {type(inputs).__name__}; {_EXPECTED}")
    leaves: list[_Leaf] = []
    for i, item in enumerate(inputs):
        if isinstance(item, _LEAF_TYPES):
            leaves.append(item)
        elif isinstance(item, list | tuple):
            for j, sub in enumerate(item):
                if not isinstance(sub, _LEAF_TYPES):
                    raise TypeError(f"unsupported type {type(sub).__name__} at inputs[{i}][{j}]; {_EXPECTED}")
                leaves.append(sub)
        else:
            raise TypeError(f"unsupported type {type(item).__name__} at inputs[{i}]; {_EXPECTED}")
    return leaves


_EXPECTED = "expected a path, URL, numpy array, PIL image, bytes, or a list of these"


def _generate(leaves: Sequence[_Leaf], opts: _Options) -> Iterator[InputItem]:
    for index, leaf in enumerate(leaves):
        input_path = _path_of(leaf)
        name = input_path if input_path is not None else _label(leaf, index)
        try:
            yield from _expand(leaf, input_path, name, opts)
        except Exception as exc:  # a bug or an unforeseen failure: never lose the other inputs
            logger.debug("unexpected error reading %s", name, exc_info=True)
            yield _error(input_path, f"{name}: unexpected error ({type(exc).__name__}: {exc})")


def _path_of(leaf: _Leaf) -> str | None:
    """``input_path`` of a path-like leaf (as given, as str); None for in-memory inputs."""
    if isinstance(leaf, str | os.PathLike):
        path = os.fspath(leaf)
        return os.fsdecode(path) if isinstance(path, bytes) else path
    return None


def _expand(leaf: _Leaf, input_path: str | None, name: str, opts: _Options) -> Iterator[InputItem]:
    if isinstance(leaf, np.ndarray):
        yield _from_memory(to_bgr, leaf, name)
    elif isinstance(leaf, Image.Image):
        yield _from_memory(_pil_to_bgr, leaf, name)
    elif isinstance(leaf, bytes | bytearray | memoryview):
        yield from _from_bytes(bytes(leaf), None, name, None, opts)
    else:
        assert input_path is not None
        yield from _from_str(input_path, opts)


def _label(leaf: _Leaf, index: int) -> str:
    """How an in-memory input is named in error messages: its kind and position in the flat list."""
    kind = "array" if isinstance(leaf, np.ndarray) else "PIL" if isinstance(leaf, Image.Image) else "bytes"
    return f"<{kind} input #{index}>"


def _from_memory(convert: Callable[[Any], np.ndarray], image: Any, name: str) -> InputItem:
    """An in-memory image (array or PIL): ``input_path`` and ``page_index`` are None, as in PaddleX."""
    try:
        return InputItem(convert(image), None, None)
    except (ValueError, TypeError, OSError, cv2.error) as exc:
        return _error(None, f"{name}: {exc}")


def _error(input_path: str | None, message: str, page_index: int | None = None) -> InputItem:
    return InputItem(None, input_path, page_index, " ".join(str(message).split()))


# --------------------------------------------------------------------------- paths and URLs


def _from_str(path: str, opts: _Options) -> Iterator[InputItem]:
    if is_url(path):
        yield from _from_url(path, opts)
        return
    scheme = _SCHEME.match(path)
    if scheme:
        yield _error(path, f"{path}: unsupported URL scheme {scheme.group(1)!r} (only http and https)")
        return
    if os.path.isdir(path):
        yield from _from_dir(path, opts)
    elif os.path.isfile(path):
        yield from _from_file(path, opts)
    elif os.path.exists(path):
        yield _error(path, f"{path}: not a regular file or directory")
    else:
        yield _error(path, f"{path}: no such file or directory")


def _from_dir(path: str, opts: _Options) -> Iterator[InputItem]:
    wanted = IMAGE_EXTENSIONS + PDF_EXTENSIONS
    try:
        with os.scandir(path) as entries:
            names = sorted(e.name for e in entries if e.name.lower().endswith(wanted) and e.is_file())
    except OSError as exc:
        yield _error(path, f"{path}: cannot list directory ({exc.strerror or exc})")
        return
    if not names:
        yield _error(path, f"{path}: no image or PDF files ({', '.join(wanted)}) in directory")
        return
    for name in names:
        yield from _from_file(os.path.join(path, name), opts)


def _from_file(path: str, opts: _Options) -> Iterator[InputItem]:
    if path.lower().endswith(PDF_EXTENSIONS) or _is_pdf_file(path):
        yield from _pdf_pages(path, path, path, opts)
        return
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        yield _error(path, f"{path}: cannot read file ({exc.strerror or exc})")
        return
    yield _decode(data, path, path, opts)


def _is_pdf_file(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return _looks_like_pdf(f.read(1024))
    except OSError:
        return False


def _looks_like_pdf(head: bytes) -> bool:
    """Starts with the ``%PDF-`` header (after whitespace); a ``.pdf`` suffix or type covers the rest."""
    return head[:1024].lstrip().startswith(b"%PDF-")


def _decode(data: np.ndarray | bytes, input_path: str | None, name: str, opts: _Options) -> InputItem:
    try:
        return InputItem(decode_image(data, name, opts.max_pixels), input_path, None)
    except ImageReadError as exc:
        return _error(input_path, str(exc))


def _from_bytes(
    data: bytes, input_path: str | None, name: str, content_type: str | None, opts: _Options
) -> Iterator[InputItem]:
    """Encoded bytes: a PDF (by magic number, content type or suffix) or an image."""
    suffix_pdf = input_path is not None and urllib.parse.urlsplit(input_path).path.lower().endswith(PDF_EXTENSIONS)
    type_pdf = content_type is not None and content_type.split(";")[0].strip().lower() == "application/pdf"
    if _looks_like_pdf(data) or type_pdf or suffix_pdf:
        yield from _pdf_pages(data, input_path, name, opts)
    else:
        yield _decode(data, input_path, name, opts)


class _NoOtherSchemeRedirect(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to http(s) (urllib would also follow one to ftp://)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        if not is_url(newurl):
            raise urllib.error.HTTPError(newurl, code, f"redirect to a non-http(s) URL {newurl!r}", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _DownloadError(Exception):
    pass


def _from_url(url: str, opts: _Options) -> Iterator[InputItem]:
    if not opts.allow_urls:
        yield _error(url, f"{url}: URLs are disabled")
        return
    try:
        data, content_type = _download(url, opts)
    except _DownloadError as exc:
        yield _error(url, f"{url}: {exc}")
        return
    yield from _from_bytes(data, url, url, content_type, opts)


def _download(url: str, opts: _Options) -> tuple[bytes, str | None]:
    """The body and Content-Type of ``url``, streamed and capped at ``opts.max_download_bytes``."""
    limit = opts.max_download_bytes
    request = urllib.request.Request(url, headers={"User-Agent": "pxtorch", "Accept": "image/*, application/pdf"})
    try:
        with urllib.request.build_opener(_NoOtherSchemeRedirect).open(request, timeout=opts.url_timeout) as response:
            length = response.headers.get("Content-Length")
            if length is not None and length.strip().isdigit() and int(length) > limit:
                raise _DownloadError(f"download of {int(length)} bytes is over the {limit} byte limit")
            body = bytearray()
            while chunk := response.read(_CHUNK):
                body += chunk
                if len(body) > limit:
                    raise _DownloadError(f"download is over the {limit} byte limit")
            content_type = response.headers.get("Content-Type")
    except urllib.error.HTTPError as exc:
        raise _DownloadError(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise _DownloadError(f"download timed out after {opts.url_timeout:g} s") from None
        raise _DownloadError(f"download failed ({reason})") from None
    except TimeoutError:
        raise _DownloadError(f"download timed out after {opts.url_timeout:g} s") from None
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise _DownloadError(f"download failed ({exc})") from None
    if not body:
        raise _DownloadError("empty download")
    return bytes(body), content_type


# --------------------------------------------------------------------------- PDF


def _pdf_pages(source: str | bytes, input_path: str | None, name: str, opts: _Options) -> Iterator[InputItem]:
    """One item per page of a PDF file or PDF bytes, rendered like PaddleX's ``PDFReader``."""
    import pypdfium2 as pdfium

    if isinstance(source, bytes) and not source:
        yield _error(input_path, f"{name}: empty file")
        return
    if isinstance(source, str) and _file_size(source) == 0:
        yield _error(input_path, f"{name}: empty file")
        return
    try:
        doc = pdfium.PdfDocument(source)
    except (pdfium.PdfiumError, OSError, ValueError) as exc:
        yield _error(input_path, f"{name}: not a readable PDF ({exc})")
        return
    try:
        n_pages = len(doc)
        if n_pages == 0:
            yield _error(input_path, f"{name}: PDF has no pages")
            return
        if opts.max_pdf_pages is not None and n_pages > opts.max_pdf_pages:
            logger.warning("%s: rendering the first %d of %d PDF pages", name, opts.max_pdf_pages, n_pages)
            n_pages = opts.max_pdf_pages
        for index in range(n_pages):
            try:
                image = _render_page(doc, index, opts)
            except (pdfium.PdfiumError, ValueError, MemoryError) as exc:
                yield _error(input_path, f"{name}: page {index}: {exc}", index)
                continue
            yield InputItem(image, input_path, index)
    finally:
        doc.close()


def _file_size(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def _render_page(doc: Any, index: int, opts: _Options) -> np.ndarray:
    page = doc[index]
    try:
        width, height = page.get_size()
        w, h = round(width * opts.pdf_scale), round(height * opts.pdf_scale)
        if w * h > opts.max_pixels:
            raise ValueError(f"rendered size {w}x{h} px is over the {opts.max_pixels} px limit")
        if w < 1 or h < 1:
            raise ValueError(f"empty page ({width:g}x{height:g} pt)")
        bitmap = page.render(scale=opts.pdf_scale, rotation=0)
        try:
            pixels = bitmap.to_numpy()  # PDFium's native order is BGR(A/x), as PaddleX's RGB->BGR result
            mode = bitmap.mode
            if pixels.ndim == 2 or mode == "L":
                image = cv2.cvtColor(pixels.reshape(pixels.shape[:2]), cv2.COLOR_GRAY2BGR)
            elif mode in ("BGR", "BGRA", "BGRX"):
                image = np.ascontiguousarray(pixels[..., :3])
            else:  # an RGB-ordered bitmap (rev_byteorder): go through PIL like PaddleX
                image = cv2.cvtColor(np.asarray(bitmap.to_pil().convert("RGB")), cv2.COLOR_RGB2BGR)
            return image.copy() if not image.flags.owndata else image
        finally:
            bitmap.close()
    finally:
        page.close()


# --------------------------------------------------------------------------- arrays and PIL


def to_bgr(array: np.ndarray) -> np.ndarray:
    """A numpy image as ``HxWx3`` uint8 BGR; the layout is PaddleX's (3 channels are taken as BGR).

    Shapes: ``HxW`` / ``HxWx1`` grey, ``HxWx3`` BGR, ``HxWx4`` BGRA (alpha dropped, as
    ``IMREAD_COLOR``). Dtypes: ``uint8`` as is; ``uint16`` by ``>> 8`` (OpenCV's rule for 16-bit
    files); ``bool`` as 0/255; floats must lie in ``[0, 1]`` and are scaled by 255 and rounded; other
    integer types must lie in ``[0, 255]``. A ``uint8`` BGR array is returned without a copy.

    Raises:
        ValueError: empty, wrong number of dimensions or channels, or values out of range.
        TypeError: a dtype that is not numeric.
    """
    if array.ndim not in (2, 3):
        raise ValueError(
            f"expected an HxW, HxWx1, HxWx3 or HxWx4 image, got shape {array.shape}"
            + (" (an array is one image: pass a list for several)" if array.ndim == 4 else "")
        )
    if array.size == 0:
        raise ValueError(f"empty image of shape {array.shape}")
    if array.ndim == 3 and array.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected 1, 3 or 4 channels, got shape {array.shape}")
    array = _to_uint8(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        return cv2.cvtColor(np.ascontiguousarray(array), cv2.COLOR_GRAY2BGR)
    if array.shape[2] == 4:
        return np.ascontiguousarray(array[..., :3])
    return np.ascontiguousarray(array)


def _to_uint8(array: np.ndarray) -> np.ndarray:
    dtype = array.dtype
    if dtype.kind == "u" and dtype.itemsize == 1:
        return array
    if dtype.kind == "u" and dtype.itemsize == 2:  # uint16 of either byte order
        return (array.astype(np.uint16) >> 8).astype(np.uint8)
    if dtype == np.bool_:
        return array.astype(np.uint8) * np.uint8(255)
    if np.issubdtype(dtype, np.floating):
        if not np.isfinite(array).all():
            raise ValueError(f"{dtype} image has NaN or infinite values")
        lo, hi = float(array.min()), float(array.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"{dtype} image values must lie in [0, 1], got [{lo:g}, {hi:g}]; pass uint8 for 0-255")
        return np.rint(array.astype(np.float32) * 255.0).astype(np.uint8)
    if np.issubdtype(dtype, np.integer):
        lo, hi = int(array.min()), int(array.max())
        if lo < 0 or hi > 255:
            raise ValueError(f"{dtype} image values must lie in [0, 255], got [{lo}, {hi}]; pass uint8 or uint16")
        return array.astype(np.uint8)
    raise TypeError(f"unsupported image dtype {dtype}")


def _pil_to_bgr(im: Image.Image) -> np.ndarray:
    """A PIL image of any mode as BGR: 16-bit modes by ``>> 8``, ``I``/``F`` by the array rules.

    Other modes go through ``convert("RGB")`` (alpha dropped, palettes expanded, CMYK/YCbCr/LAB
    converted by Pillow). The EXIF orientation is not applied to images already in memory.
    """
    mode = im.mode
    if mode.startswith("I;16"):
        return to_bgr(np.asarray(im).astype(np.uint16, copy=False))
    if mode in ("I", "F"):
        return to_bgr(np.asarray(im))
    rgb = np.asarray(im if mode == "RGB" else im.convert("RGB"))
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
