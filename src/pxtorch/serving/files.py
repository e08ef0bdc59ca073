"""Request files to images, and images back to Base64 JPEG, for the serving endpoints.

``file`` is Base64 (standard alphabet, padding optional, whitespace ignored) or, when the server's
allow-list names its host, an http(s) URL. ``fileType``: 0 PDF, 1 image, ``None`` = infer from the
URL's suffix (Base64 content without a type is refused, as PaddleX does).
"""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image

from ..processing.inputs import IMAGE_EXTENSIONS, PDF_EXTENSIONS, is_url, iter_inputs
from .settings import ServerSettings

__all__ = ["DecodedFile", "RequestError", "decode_file", "image_to_base64"]

PDF, IMAGE = 0, 1
_WHITESPACE = re.compile(rb"\s+")


class RequestError(Exception):
    """A request the server refuses: ``status`` is the HTTP status of the error envelope."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class DecodedFile:
    """The images of one request file (BGR uint8) and PaddleX's ``dataInfo`` for it."""

    images: list[np.ndarray]
    data_info: dict[str, Any]


def infer_file_type(url: str) -> int | None:
    """0 for a ``.pdf`` URL, 1 for an image suffix, ``None`` otherwise (PaddleX ``infer_file_type``)."""
    path = urllib.parse.urlsplit(url).path.lower()
    if path.endswith(PDF_EXTENSIONS):
        return PDF
    if path.endswith((*IMAGE_EXTENSIONS, ".tif", ".tiff", ".webp")):
        return IMAGE
    return None


def _b64decode(text: str) -> bytes:
    data = _WHITESPACE.sub(b"", text.encode("ascii", errors="strict"))
    data += b"=" * (-len(data) % 4)
    return base64.b64decode(data, validate=True)


def decode_file(file: str, file_type: int | None, settings: ServerSettings) -> DecodedFile:
    """Images of a request's ``file``; raises :class:`RequestError` (422/403) for anything unusable."""
    if is_url(file):
        if not settings.url_allowed(file):
            why = "URL inputs are disabled on this server" if not settings.url_allowlist else "host not allowed"
            raise RequestError(403, f"{why}: {urllib.parse.urlsplit(file).hostname} (server option --allow-url-host)")
        if file_type is None:
            file_type = infer_file_type(file)
            if file_type is None:
                raise RequestError(422, "File type cannot be determined")
        source: str | bytes = file
    else:
        if file_type is None:
            raise RequestError(422, "File type cannot be determined")
        try:
            source = _b64decode(file)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise RequestError(422, "Invalid Base64 data in 'file'") from None
        if not source:
            raise RequestError(422, "'file' is empty")
        is_pdf = source[:5] == b"%PDF-"
        if is_pdf != (file_type == PDF):
            want, got = ("a PDF", "not a PDF") if file_type == PDF else ("an image", "a PDF")
            raise RequestError(422, f"fileType {file_type} says {want}, but the data is {got}")
    items = list(
        iter_inputs(
            source,
            allow_urls=True,
            url_timeout=settings.url_timeout_s,
            max_download_bytes=settings.max_body_bytes,
            max_pixels=settings.max_image_pixels,
            max_pdf_pages=settings.max_pdf_pages,
        )
    )
    errors = [it.error for it in items if it.error is not None]
    if errors:
        raise RequestError(422, errors[0].replace("<bytes input #0>", "file"))
    images = [it.image for it in items]
    if file_type == PDF:
        info = {
            "type": "pdf",
            "numPages": _pdf_page_count(source, len(images)),
            "pages": [{"width": im.shape[1], "height": im.shape[0]} for im in images],
        }
    else:
        if len(images) != 1:
            raise RequestError(422, "fileType 1 (image) but the data is a PDF")
        info = {"type": "image", "width": images[0].shape[1], "height": images[0].shape[0]}
    return DecodedFile(images, info)  # type: ignore[arg-type]


def _pdf_page_count(source: str | bytes, rendered: int) -> int:
    if not isinstance(source, bytes):
        return rendered
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(source)
    try:
        return len(doc)
    finally:
        doc.close()


def image_to_base64(image: np.ndarray | Image.Image, max_size: tuple[int, int] | None, quality: int = 95) -> str:
    """JPEG Base64 of a BGR array or a PIL image, downscaled to fit ``max_size`` (w, h) keeping the aspect."""
    if isinstance(image, Image.Image):
        image = cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2BGR)
    h, w = image.shape[:2]
    if max_size is not None and (w > max_size[0] or h > max_size[1]):
        scale = min(max_size[0] / w, max_size[1] / h)
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return base64.b64encode(buf.tobytes()).decode("ascii")
