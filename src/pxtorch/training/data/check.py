"""PaddleX's ``check_dataset`` mode for the OCR datasets: validate, summarise, visualise.

:func:`check_dataset` reads every line of ``train.txt`` and ``val.txt`` with :mod:`.formats`, decodes
every image, and writes what PaddleX writes (``paddlex/modules/base/dataset_checker``,
``paddlex/utils/result_saver.py``):

- ``<output>/check_dataset_result.json``: ``{"done_flag": true, "check_pass": true, "attributes": {...},
  "analysis": {"histogram": "check_dataset/histogram.png"}, "dataset_path", "show_type": "image",
  "dataset_type"}``, or ``{"done_flag": false, "err_type", "err_msg"}`` when the check fails;
- ``<output>/check_dataset/demo_img/``: the first ``num_samples`` samples of each split, drawn;
- ``<output>/check_dataset/histogram.png``: PaddleX's plot for the dataset type (needs matplotlib).

``attributes`` holds PaddleX's keys (``train_samples``, ``train_sample_paths``, ``val_samples``,
``val_sample_paths``; ``label_file`` and ``num_classes`` for ``ClsDataset``) and pxtorch's statistics;
``attributes["warnings"]`` lists what PaddleOCR training would silently skip or drop (characters missing
from ``dict.txt``, labels longer than 25 characters, tiny boxes...). Those are warnings, not failures.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw

from ...processing.visualize import _truetype, find_font
from .formats import (
    DatasetFormatError,
    DetSample,
    read_cls_labels,
    read_cls_list,
    read_det_list,
    read_dict,
    read_rec_list,
)

__all__ = ["DATASET_TYPES", "TASK_ALIASES", "check_dataset", "normalize_task"]

#: Task names accepted by :func:`check_dataset` (pxtorch's and PaddleX's module names).
TASK_ALIASES = {
    "text_det": "text_det",
    "text_detection": "text_det",
    "text_rec": "text_rec",
    "text_recognition": "text_rec",
    "textline_ori": "textline_ori",
    "textline_orientation": "textline_ori",
}
#: PaddleX ``dataset_type`` of each task.
DATASET_TYPES = {"text_det": "TextDetDataset", "text_rec": "MSTextRecDataset", "textline_ori": "ClsDataset"}
_REQUIRED = {
    "text_det": ("images/", "train.txt", "val.txt"),
    "text_rec": ("images/", "train.txt", "val.txt", "dict.txt"),
    "textline_ori": ("images/", "label.txt", "train.txt", "val.txt"),
}
SPLITS = ("train", "val")
#: PP-OCR recognition configs drop training labels longer than this (``Global.max_text_length``).
MAX_TEXT_LENGTH = 25
#: DB's ``MakeShrinkMap`` ignores boxes whose width or height is below this (``min_text_size``).
DB_MIN_TEXT_SIZE = 8
_GREEN, _RED = (0, 255, 0), (0, 0, 255)  # BGR


def normalize_task(task: str) -> str:
    """``text_det`` / ``text_rec`` / ``textline_ori`` for a pxtorch or PaddleX module name."""
    try:
        return TASK_ALIASES[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r}; choose from {sorted(TASK_ALIASES)}") from None


def check_dataset(dataset_dir: str | Path, task: str, output: str | Path = "output", num_samples: int = 10) -> dict:
    """Check a PaddleX OCR dataset and write PaddleX's ``check_dataset`` outputs into ``output``.

    Args:
        dataset_dir: the dataset directory (``images/``, ``train.txt``, ``val.txt`` and ``dict.txt`` or
            ``label.txt``).
        task: ``text_det``, ``text_rec`` or ``textline_ori`` (or PaddleX's ``text_detection``,
            ``text_recognition``, ``textline_orientation``).
        output: PaddleX's ``Global.output``.
        num_samples: samples per split to draw into ``check_dataset/demo_img``.

    Returns:
        The content of ``check_dataset_result.json``.

    Raises:
        DatasetFormatError: the dataset breaks its format (the message names the file and line); the
            failure is written to ``check_dataset_result.json`` first, as PaddleX does.
    """
    out = Path(output)
    vis_dir = out / "check_dataset"
    try:
        kind = normalize_task(task)
        root = Path(dataset_dir)
        _check_layout(root, kind)
        demo_dir = vis_dir / "demo_img"
        if demo_dir.is_dir():
            shutil.rmtree(demo_dir)
        demo_dir.mkdir(parents=True, exist_ok=True)
        checker = {"text_det": _check_det, "text_rec": _check_rec, "textline_ori": _check_cls}[kind]
        attributes, plot = checker(root, out, num_samples)
        analysis: dict[str, Any] = {}
        try:
            plot(vis_dir / "histogram.png")
            analysis["histogram"] = os.path.join("check_dataset", "histogram.png")
        except ImportError as exc:
            note = f"no histogram: {exc} (pip install matplotlib)"
            attributes.setdefault("warnings", []).append(note)
            warnings.warn(note, stacklevel=2)
        result = {
            "done_flag": True,
            "check_pass": True,
            "attributes": attributes,
            "analysis": analysis,
            "dataset_path": str(dataset_dir),
            "show_type": "image",
            "dataset_type": DATASET_TYPES[kind],
        }
    except Exception as exc:
        _write_json(
            out / "check_dataset_result.json", {"done_flag": False, "err_type": str(type(exc)), "err_msg": str(exc)}
        )
        raise
    _write_json(out / "check_dataset_result.json", result)
    return result


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _check_layout(root: Path, kind: str) -> None:
    if not root.is_dir():
        raise DatasetFormatError(root, None, "dataset directory not found" if not root.exists() else "not a directory")
    layout = ", ".join(_REQUIRED[kind])
    for name in _REQUIRED[kind]:
        path = root / name.rstrip("/")
        ok = path.is_dir() if name.endswith("/") else path.is_file()
        if not ok:
            what = "directory" if name.endswith("/") else "file"
            raise DatasetFormatError(path, None, f"required {what} not found; a {DATASET_TYPES[kind]} holds {layout}")


def _decode(image: Path, list_file: Path, line: int) -> np.ndarray:
    """The image as BGR uint8 (``cv2.imdecode`` of its bytes, as PaddleOCR reads it)."""
    data = np.fromfile(str(image), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise DatasetFormatError(list_file, line, f"cannot decode image {image} (corrupt or not an image)")
    return img


def _demo_name(split: str, index: int, image: Path) -> str:
    return f"{split}_{index:03d}_{image.stem}.jpg"


def _save_demo(out: Path, name: str, img: np.ndarray) -> str:
    """Write ``img`` to ``<out>/check_dataset/demo_img/<name>``; the path PaddleX records (relative to ``out``)."""
    path = out / "check_dataset" / "demo_img" / name
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise OSError(f"could not encode {path}")
    path.write_bytes(buf.tobytes())
    return os.path.join("check_dataset", "demo_img", name)


def _with_caption(img: np.ndarray, text: str, highlight: set[str] = frozenset()) -> np.ndarray:
    """``img`` (BGR) above a white band with ``text``; characters in ``highlight`` drawn in red."""
    size = int(min(max(img.shape[0] * 0.6, 16), 32))
    font = _truetype(str(find_font(text)), size)
    text_w = math.ceil(font.getlength(text)) + 8
    band_h = int(size * 1.6)
    width = max(img.shape[1], text_w)
    canvas = Image.new("RGB", (width, img.shape[0] + band_h), (255, 255, 255))
    canvas.paste(Image.fromarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB)), (0, 0))
    draw = ImageDraw.Draw(canvas)
    y = img.shape[0] + (band_h - size) // 2 - 2
    draw.text((4, y), text, font=font, fill=(0, 0, 0))
    for k, char in enumerate(text):
        if char in highlight:
            draw.text((4 + font.getlength(text[:k]), y), char, font=font, fill=(220, 0, 0))
    return cv2.cvtColor(np.asarray(canvas), cv2.COLOR_RGB2BGR)


def _figure(width: float, height: float, dpi: int, ncols: int = 1):
    """A matplotlib figure drawn off-screen (no pyplot state) and its axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols)
    return fig, axes


def _grouped_bars(
    path: Path,
    names: Sequence[str],
    train: Sequence[int],
    val: Sequence[int],
    xlabel: str,
    width: float,
    size: tuple[float, float],
) -> None:
    fig, ax = _figure(*size, dpi=120)
    x = np.arange(len(names))
    ax.bar(x, train, width=width, label="train")
    ax.bar(x + width, val, width=width, label="val")
    ax.set_xticks(x + width / 2, list(names), rotation=90)
    ax.set_xlabel(xlabel, fontsize=12)
    ax.set_ylabel("number of images", fontsize=12)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


# --------------------------------------------------------------------------------------------------
# Text detection
# --------------------------------------------------------------------------------------------------


def _check_det(root: Path, out: Path, num_samples: int) -> tuple[dict, Callable[[Path], None]]:
    from shapely.geometry import Polygon

    attrs: dict[str, Any] = {}
    notes: list[str] = []
    ratios_w: list[float] = []
    ratios_h: list[float] = []
    sizes: list[tuple[int, int]] = []
    empty = small = outside = invalid = 0
    for split in SPLITS:
        list_file = root / f"{split}.txt"
        samples: list[DetSample] = read_det_list(list_file, root)
        paths = []
        boxes = ignored = 0
        for index, sample in enumerate(samples):
            img = _decode(sample.image, list_file, index + 1)
            h, w = img.shape[:2]
            sizes.append((w, h))
            boxes += len(sample.polys)
            ignored += sum(sample.ignore)
            empty += not sample.polys
            for poly, skip in zip(sample.polys, sample.ignore, strict=True):
                box = poly.astype(np.int32)  # as PaddleX's analysis
                box_w, box_h = box.max(axis=0) - box.min(axis=0)
                ratios_w.append(float(box_w) / w)
                ratios_h.append(float(box_h) / h)
                if not skip and min(np.ptp(poly[:, 0]), np.ptp(poly[:, 1])) < DB_MIN_TEXT_SIZE:
                    small += 1
                if (poly < -1).any() or (poly[:, 0] > w + 1).any() or (poly[:, 1] > h + 1).any():
                    outside += 1
                shape = Polygon(poly)
                if not shape.is_valid or shape.area <= 0:
                    invalid += 1
            if index < num_samples:
                vis = img.copy()
                thickness = max(2, round(max(h, w) / 400))
                for poly, skip in zip(sample.polys, sample.ignore, strict=True):
                    pts = np.round(poly).astype(np.int32).reshape(-1, 1, 2)
                    cv2.polylines(vis, [pts], True, _RED if skip else _GREEN, thickness)
                paths.append(_save_demo(out, _demo_name(split, index, sample.image), vis))
        attrs[f"{split}_samples"] = len(samples)
        attrs[f"{split}_sample_paths"] = paths
        attrs[f"{split}_boxes"] = boxes
        attrs[f"{split}_ignored_boxes"] = ignored
    size_arr = np.asarray(sizes, np.float64)
    attrs["image_width_mean"] = round(float(size_arr[:, 0].mean()), 1)
    attrs["image_height_mean"] = round(float(size_arr[:, 1].mean()), 1)
    attrs["boxes_per_image"] = round((attrs["train_boxes"] + attrs["val_boxes"]) / len(sizes), 2)
    if empty:
        notes.append(f"{empty} images have no boxes (an empty label list); PaddleOCR's DetLabelEncode skips them")
    if small:
        notes.append(f"{small} boxes are narrower or lower than {DB_MIN_TEXT_SIZE} px; DB training ignores them")
    if outside:
        notes.append(f"{outside} boxes have points outside their image")
    if invalid:
        notes.append(f"{invalid} polygons are self-intersecting or have no area (check the point order)")
    attrs["warnings"] = notes

    def plot(path: Path) -> None:
        # PaddleX: box width and height relative to the image (x1000), as two histograms side by side
        fig, (ax_w, ax_h) = _figure(12.8, 4.8, dpi=100, ncols=2)
        for ax, values, color, label in (
            (ax_w, ratios_w, "yellowgreen", "Width rate *1000"),
            (ax_h, ratios_h, "pink", "Height rate *1000"),
        ):
            scaled = [v * 1000 for v in values]
            bins = max(1, int((max(scaled) - min(scaled)) // 10)) if scaled else 1
            ax.hist(scaled, bins=bins, rwidth=0.8, color=color)
            ax.set_xlabel(label)
            ax.set_ylabel("number")
        fig.tight_layout()
        fig.savefig(path)

    return attrs, plot


# --------------------------------------------------------------------------------------------------
# Text recognition
# --------------------------------------------------------------------------------------------------


def _check_rec(root: Path, out: Path, num_samples: int) -> tuple[dict, Callable[[Path], None]]:
    entries = read_dict(root / "dict.txt")
    known = set(entries) | {" "}  # PP-OCR recognisers add the space class (use_space_char)
    attrs: dict[str, Any] = {}
    notes: list[str] = []
    lengths: dict[str, list[int]] = {}
    unknown: Counter[str] = Counter()
    with_unknown: dict[str, int] = {}
    dropped = too_long = 0
    heights: list[int] = []
    for split in SPLITS:
        list_file = root / f"{split}.txt"
        samples = read_rec_list(list_file, root)
        paths = []
        lengths[split] = []
        with_unknown[split] = 0
        for index, sample in enumerate(samples):
            img = _decode(sample.image, list_file, index + 1)
            heights.append(img.shape[0])
            lengths[split].append(len(sample.text))
            missing = [c for c in sample.text if c not in known]
            if missing:
                unknown.update(missing)
                with_unknown[split] += 1
                dropped += len(missing) == len(sample.text)
            too_long += len(sample.text) > MAX_TEXT_LENGTH
            if index < num_samples:
                vis = _with_caption(img, sample.text, set(missing))
                paths.append(_save_demo(out, _demo_name(split, index, sample.image), vis))
        attrs[f"{split}_samples"] = len(samples)
        attrs[f"{split}_sample_paths"] = paths
    all_lengths = lengths["train"] + lengths["val"]
    attrs["dict_size"] = len(entries)
    attrs["label_length_max"] = max(all_lengths)
    attrs["label_length_mean"] = round(float(np.mean(all_lengths)), 2)
    attrs["image_height_mean"] = round(float(np.mean(heights)), 1)
    attrs["labels_with_unknown_chars"] = with_unknown
    attrs["unknown_chars"] = dict(unknown.most_common())
    if unknown:
        total = with_unknown["train"] + with_unknown["val"]
        chars = "".join(unknown)
        notes.append(
            f"{total} labels ({with_unknown['train']} train, {with_unknown['val']} val) contain {len(unknown)} "
            f"characters missing from dict.txt: {chars!r}; PaddleOCR's label encoder skips them"
            + (f", and drops the {dropped} labels that have no other character" if dropped else "")
        )
    if too_long:
        notes.append(
            f"{too_long} labels are longer than {MAX_TEXT_LENGTH} characters; PP-OCR recognition training "
            f"(max_text_length {MAX_TEXT_LENGTH}) drops them"
        )
    multi = [e for e in entries if len(e) > 1]
    if multi:
        notes.append(
            f"dict.txt has {len(multi)} entries of more than one character (e.g. {multi[0]!r}); labels are encoded "
            "character by character, so those classes are never trained"
        )
    if " " in entries:
        notes.append("dict.txt contains a space; PP-OCR recognisers add the space class themselves (use_space_char)")
    attrs["warnings"] = notes

    def plot(path: Path) -> None:
        # PaddleX: label lengths in bins of 5 (up to 100, then one "> 100" bin), train beside val
        interval, limit = 5, 100
        top = min(limit, max(all_lengths))
        edges = list(range(0, math.ceil(top / interval) * interval + 1, interval))
        names = [f"{a}-{b}" for a, b in itertools.pairwise(edges)]

        def counts(values: list[int]) -> list[int]:
            bins = [sum(a < v <= b for v in values) for a, b in itertools.pairwise(edges)]
            if max(all_lengths) > limit:
                bins.append(sum(v > limit for v in values))
            return bins

        if max(all_lengths) > limit:
            names.append(f"> {limit}")
        _grouped_bars(path, names, counts(lengths["train"]), counts(lengths["val"]), "label length", 0.3, (10, 5))

    return attrs, plot


# --------------------------------------------------------------------------------------------------
# Text-line orientation (ClsDataset)
# --------------------------------------------------------------------------------------------------


def _check_cls(root: Path, out: Path, num_samples: int) -> tuple[dict, Callable[[Path], None]]:
    label_file = root / "label.txt"
    names = read_cls_labels(label_file)
    attrs: dict[str, Any] = {
        "label_file": os.path.relpath(label_file, out / "check_dataset"),
        "num_classes": len(names),
    }
    notes: list[str] = []
    counts: dict[str, list[int]] = {}
    for split in SPLITS:
        list_file = root / f"{split}.txt"
        samples = read_cls_list(list_file, root, num_classes=len(names))
        paths = []
        counts[split] = [0] * len(names)
        for index, sample in enumerate(samples):
            img = _decode(sample.image, list_file, index + 1)
            counts[split][sample.label] += 1
            if index < num_samples:
                vis = _with_caption(img, f"{sample.label}: {names[sample.label]}")
                paths.append(_save_demo(out, _demo_name(split, index, sample.image), vis))
        attrs[f"{split}_samples"] = len(samples)
        attrs[f"{split}_sample_paths"] = paths
    attrs["class_names"] = names
    for split in SPLITS:
        attrs[f"{split}_class_counts"] = dict(zip(names, counts[split], strict=True))
        absent = [n for n, c in zip(names, counts[split], strict=True) if c == 0]
        if absent:
            notes.append(f"{split}.txt has no sample of class {', '.join(absent)}")
    attrs["warnings"] = notes

    def plot(path: Path) -> None:
        # PaddleX: images per class, classes sorted by their train count, train beside val
        order = sorted(range(len(names)), key=lambda k: counts["train"][k], reverse=True)
        _grouped_bars(
            path,
            [names[k] for k in order],
            [counts["train"][k] for k in order],
            [counts["val"][k] for k in order],
            "class name",
            0.4,
            (max(8, len(names) / 5), 5),
        )

    return attrs, plot
