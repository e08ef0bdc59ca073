"""Readers for PaddleX's OCR dataset formats, with errors that name the file and the 1-based line.

- ``TextDetDataset`` (text detection): ``train.txt`` / ``val.txt`` lines
  ``images/x.jpg<TAB>[{"transcription": "...", "points": [[x, y], ...]}, ...]``; ``"###"`` marks a box
  that training ignores (PaddleOCR's ``DetLabelEncode`` also ignores ``"*"``; so do we).
- ``MSTextRecDataset`` (text recognition): lines ``images/x.jpg<TAB>label`` (exactly two TAB-separated
  fields; the label may contain spaces) and ``dict.txt``, one dictionary entry per line.
- ``ClsDataset`` (text-line orientation): ``label.txt`` lines ``<id> <name>`` (``0 0`` / ``1 180``) and
  lines ``images/x.jpg <id>`` (space-separated).

Image paths are relative to the dataset directory (an absolute path is used as is, as PaddleOCR's
``os.path.join`` does). Files are UTF-8; a byte-order mark, CRLF line ends and empty lines at the end of
a file are accepted, anything else that PaddleX or PaddleOCR would reject, skip or misread is an error.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...processing.charset import parse_dict_text

__all__ = [
    "DET_EXAMPLE",
    "IGNORE_TEXTS",
    "REC_EXAMPLE",
    "ClsSample",
    "DatasetFormatError",
    "DetSample",
    "RecSample",
    "read_cls_labels",
    "read_cls_list",
    "read_det_list",
    "read_dict",
    "read_rec_list",
]

#: Transcriptions that mark a detection box as "do not care" (PaddleOCR ``DetLabelEncode``).
IGNORE_TEXTS = frozenset({"###", "*"})

DET_EXAMPLE = (
    'images/img_1.jpg\\t[{"transcription": "MASA", "points": [[310, 104], [416, 141], [418, 216], [312, 179]]}]'
)
REC_EXAMPLE = "images/word_1.jpg\\tlabel text"
CLS_LIST_EXAMPLE = "images/line_1.jpg 0"
CLS_LABEL_EXAMPLE = "0 0"
DICT_EXAMPLE = "one character per line"
_INT = re.compile(r"[0-9]+")


class DatasetFormatError(ValueError):
    """A dataset file breaks its PaddleX format.

    Attributes:
        path: the offending file (a list, ``dict.txt``, ``label.txt`` or an image).
        line: 1-based line number in ``path``, or ``None`` when the whole file is at fault.
        reason: what is wrong.
        expected: an example of the right format, or ``None``.
    """

    def __init__(self, path: str | Path, line: int | None, reason: str, expected: str | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.reason = reason
        self.expected = expected
        where = f"{self.path}:{line}" if line is not None else f"{self.path}"
        hint = f" (expected '{expected}')" if expected else ""
        super().__init__(f"{where}: {reason}{hint}")

    def __reduce__(self):  # picklable across DataLoader workers
        return (type(self), (self.path, self.line, self.reason, self.expected))


@dataclass(frozen=True)
class DetSample:
    """One detection image: polygons ``(K, 2)`` float32 (K >= 4), their texts and ignore flags."""

    image: Path
    polys: list[np.ndarray]
    texts: list[str]
    ignore: list[bool]


@dataclass(frozen=True)
class RecSample:
    """One recognition crop and its label."""

    image: Path
    text: str


@dataclass(frozen=True)
class ClsSample:
    """One classification image and its class id."""

    image: Path
    label: int


# --------------------------------------------------------------------------------------------------
# Lines
# --------------------------------------------------------------------------------------------------


def _decode(path: Path) -> str:
    """The file's text: UTF-8, a leading byte-order mark dropped."""
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DatasetFormatError(path, line, f"not UTF-8 text (byte 0x{data[exc.start]:02x})") from None


def _read_lines(path: Path, expected: str | None = None) -> list[tuple[int, str]]:
    """``(line number, text)`` of every line, without line ends; empty lines at the end dropped.

    Raises:
        DatasetFormatError: missing file, not UTF-8, empty file, or an empty line before the end.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(path, None, "file not found" if not path.exists() else "not a file", expected)
    text = _decode(path)
    lines = [(i, s[:-1] if s.endswith("\r") else s) for i, s in enumerate(text.split("\n"), start=1)]
    while lines and lines[-1][1].strip() == "":
        lines.pop()
    if not lines:
        raise DatasetFormatError(path, None, "file is empty", expected)
    for number, line in lines:
        if line.strip() == "":
            raise DatasetFormatError(path, number, "empty line", expected)
    return lines


def _image_path(root: Path, name: str, list_file: Path, number: int, check: bool, expected: str) -> Path:
    if name == "" or name != name.strip():
        what = "empty image path" if name.strip() == "" else f"image path {name!r} has leading/trailing spaces"
        raise DatasetFormatError(list_file, number, what, expected)
    image = Path(root) / name
    if check and not image.is_file():
        raise DatasetFormatError(list_file, number, f"image not found: {image}")
    return image


# --------------------------------------------------------------------------------------------------
# Text detection
# --------------------------------------------------------------------------------------------------


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _parse_det_label(label: str, list_file: Path, number: int) -> tuple[list[np.ndarray], list[str], list[bool]]:
    def fail(reason: str) -> DatasetFormatError:
        return DatasetFormatError(list_file, number, reason, DET_EXAMPLE)

    try:
        boxes = json.loads(label)
    except json.JSONDecodeError as exc:
        raise fail(f"label is not valid JSON: {exc.msg} at column {exc.colno} of the label") from None
    if not isinstance(boxes, list):
        raise fail(f"label must be a JSON list of boxes, got {type(boxes).__name__}")
    polys, texts, ignore = [], [], []
    for k, box in enumerate(boxes):
        if not isinstance(box, dict):
            raise fail(f"box {k} is not a JSON object")
        missing = [key for key in ("transcription", "points") if key not in box]
        if missing:
            raise fail(f"box {k} has no {' and no '.join(repr(m) for m in missing)} key")
        text, points = box["transcription"], box["points"]
        if not isinstance(text, str):
            raise fail(f"box {k}: 'transcription' must be a string, got {type(text).__name__}")
        if not isinstance(points, list) or not all(isinstance(p, list) and len(p) == 2 for p in points):
            raise fail(f"box {k}: 'points' must be a list of [x, y] pairs")
        if len(points) < 4:
            raise fail(f"box {k}: 'points' has {len(points)} points, at least 4 are needed")
        if not all(_number(v) for p in points for v in p):
            raise fail(f"box {k}: 'points' holds a value that is not a finite number")
        polys.append(np.asarray(points, dtype=np.float32).reshape(-1, 2))
        texts.append(text)
        ignore.append(text in IGNORE_TEXTS)
    return polys, texts, ignore


def read_det_list(list_file: Path, root: Path, check_images: bool = True) -> list[DetSample]:
    """Read a ``TextDetDataset`` list (``train.txt`` / ``val.txt``).

    A line whose JSON list is empty gives a sample without polygons (PaddleOCR skips such images in
    training; :func:`pxtorch.training.data.check.check_dataset` reports them).

    Raises:
        DatasetFormatError: naming the file and line: no TAB, more than one TAB, bad JSON, a box without
            ``transcription``/``points``, fewer than 4 points, non-numeric points, a missing image
            (when ``check_images``), an empty file or line.
    """
    list_file, root = Path(list_file), Path(root)
    samples = []
    for number, line in _read_lines(list_file, DET_EXAMPLE):
        parts = line.split("\t")
        if len(parts) == 1:
            spaced = " [" in line or " [{" in line
            hint = "; the separator must be a TAB, not spaces" if spaced else ""
            raise DatasetFormatError(list_file, number, f"no TAB between image path and label{hint}", DET_EXAMPLE)
        if len(parts) > 2:
            raise DatasetFormatError(
                list_file, number, f"{len(parts) - 1} TABs; exactly one must separate image path and label", DET_EXAMPLE
            )
        name, label = parts
        image = _image_path(root, name, list_file, number, check_images, DET_EXAMPLE)
        polys, texts, ignore = _parse_det_label(label, list_file, number)
        samples.append(DetSample(image=image, polys=polys, texts=texts, ignore=ignore))
    return samples


# --------------------------------------------------------------------------------------------------
# Text recognition
# --------------------------------------------------------------------------------------------------


def read_rec_list(list_file: Path, root: Path, check_images: bool = True) -> list[RecSample]:
    """Read an ``MSTextRecDataset`` list: ``images/x.jpg<TAB>label`` per line.

    Raises:
        DatasetFormatError: naming the file and line: not exactly two TAB-separated fields, an empty
            label, a missing image (when ``check_images``), an empty file or line.
    """
    list_file, root = Path(list_file), Path(root)
    samples = []
    for number, line in _read_lines(list_file, REC_EXAMPLE):
        parts = line.split("\t")
        if len(parts) != 2:
            reason = (
                "no TAB between image path and label"
                if len(parts) == 1
                else f"{len(parts)} TAB-separated fields; exactly 2 are needed (a label cannot contain a TAB)"
            )
            raise DatasetFormatError(list_file, number, reason, REC_EXAMPLE)
        name, text = parts
        image = _image_path(root, name, list_file, number, check_images, REC_EXAMPLE)
        if text == "":
            raise DatasetFormatError(list_file, number, "empty label", REC_EXAMPLE)
        samples.append(RecSample(image=image, text=text))
    return samples


def read_dict(path: Path) -> list[str]:
    """Read a recognition dictionary (``dict.txt``): one entry per line, in class order.

    Entries are kept exactly (a line holding one space is the space character). PaddleOCR loads
    entries of more than one character as they are (PP-OCRv5's dictionary has flag emoji made of two
    code points), so they are accepted; its label encoder iterates a label character by character, so
    such an entry can only be predicted, never trained.

    Raises:
        DatasetFormatError: missing or empty file, an empty entry, or an entry that repeats an earlier
            one (PaddleOCR would silently map the character to the later class only).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(path, None, "dictionary file not found", DICT_EXAMPLE)
    entries = parse_dict_text(_decode(path))
    while entries and entries[-1] == "":
        entries.pop()
    if not entries:
        raise DatasetFormatError(path, None, "dictionary is empty", DICT_EXAMPLE)
    seen: dict[str, int] = {}
    for number, entry in enumerate(entries, start=1):
        if entry == "":
            raise DatasetFormatError(path, number, "empty entry", DICT_EXAMPLE)
        if entry in seen:
            raise DatasetFormatError(path, number, f"duplicate entry {entry!r} (first on line {seen[entry]})")
        seen[entry] = number
    return entries


# --------------------------------------------------------------------------------------------------
# Classification (text-line orientation)
# --------------------------------------------------------------------------------------------------


def read_cls_labels(path: Path) -> list[str]:
    """Read a ``ClsDataset`` ``label.txt`` (``<id> <name>`` per line); the names indexed by id.

    Raises:
        DatasetFormatError: a line without a space-separated id and name, a non-integer or duplicate id,
            or ids that are not exactly ``0 .. N-1``.
    """
    path = Path(path)
    names: dict[int, str] = {}
    lines: dict[int, int] = {}
    for number, line in _read_lines(path, CLS_LABEL_EXAMPLE):
        parts = line.split(" ", 1)
        if len(parts) != 2 or parts[1].strip() == "":
            raise DatasetFormatError(
                path, number, "expected a class id and a name separated by a space", CLS_LABEL_EXAMPLE
            )
        if not _INT.fullmatch(parts[0]):
            reason = f"class id {parts[0]!r} is not a non-negative integer"
            raise DatasetFormatError(path, number, reason, CLS_LABEL_EXAMPLE)
        class_id = int(parts[0])
        if class_id in names:
            raise DatasetFormatError(path, number, f"duplicate class id {class_id} (first on line {lines[class_id]})")
        names[class_id] = parts[1].strip()
        lines[class_id] = number
    missing = sorted(set(range(len(names))) - set(names))
    if missing:
        raise DatasetFormatError(
            path, None, f"class ids must be 0..{len(names) - 1}; missing {missing}, found {sorted(names)}"
        )
    return [names[i] for i in range(len(names))]


def read_cls_list(list_file: Path, root: Path, num_classes: int, check_images: bool = True) -> list[ClsSample]:
    """Read a ``ClsDataset`` list: ``images/x.jpg <id>`` per line (one space; no spaces in the path).

    Raises:
        DatasetFormatError: naming the file and line: not exactly two space-separated fields, an id
            that is not an integer in ``[0, num_classes)``, a missing image (when ``check_images``).
    """
    list_file, root = Path(list_file), Path(root)
    samples = []
    for number, line in _read_lines(list_file, CLS_LIST_EXAMPLE):
        parts = line.split(" ")
        if len(parts) != 2:
            reason = (
                "no space between image path and class id"
                if len(parts) == 1
                else f"{len(parts)} space-separated fields; exactly 2 are needed (no spaces in file names)"
            )
            if "\t" in line:
                reason += "; the separator must be one space, not a TAB"
            raise DatasetFormatError(list_file, number, reason, CLS_LIST_EXAMPLE)
        name, label = parts
        if not _INT.fullmatch(label):
            reason = f"class id {label!r} is not a non-negative integer"
            raise DatasetFormatError(list_file, number, reason, CLS_LIST_EXAMPLE)
        class_id = int(label)
        if not 0 <= class_id < num_classes:
            raise DatasetFormatError(
                list_file, number, f"class id {class_id} is out of range 0..{num_classes - 1} (label.txt)"
            )
        image = _image_path(root, name, list_file, number, check_images, CLS_LIST_EXAMPLE)
        samples.append(ClsSample(image=image, label=class_id))
    return samples
