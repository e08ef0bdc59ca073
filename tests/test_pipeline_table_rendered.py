"""table_recognition on a rendered table (runs without ../shared): structure, cell texts, HTML and xlsx agree."""

from __future__ import annotations

import numpy as np
import openpyxl
import pytest
from PIL import Image, ImageDraw, ImageFont

import pxtorch
from pxtorch.processing.table_export import table_grid
from pxtorch.processing.visualize import find_font

ROWS = [
    ["Name", "City", "Score"],
    ["Alice", "Paris", "91"],
    ["Bob", "Berlin", "78"],
    ["Carol", "Tokyo", "85"],
    ["Dave", "Lima", "62"],
]


def _render(rows: list[list[str]], cell_w: int = 180, cell_h: int = 56, margin: int = 10) -> np.ndarray:
    """A ruled table, black on white, one text per cell, as BGR uint8.

    Tight like the table crops SLANet is trained on: with a 60 px white border the model (ONNX and
    pxtorch alike) reads the border as an extra title row.
    """
    h, w = len(rows) * cell_h + 2 * margin, len(rows[0]) * cell_w + 2 * margin
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(str(find_font("Name")), 28)
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            x0, y0 = margin + c * cell_w, margin + r * cell_h
            draw.rectangle([x0, y0, x0 + cell_w, y0 + cell_h], outline="black", width=2)
            draw.text((x0 + 16, y0 + cell_h / 2), text, fill="black", font=font, anchor="lm")
    return np.ascontiguousarray(np.asarray(img)[:, :, ::-1])


@pytest.fixture(scope="module")
def result():
    pipe = pxtorch.pipeline("table_recognition", device="cpu")
    return pipe(_render(ROWS))[0]


def test_rendered_table_reads_back(result):
    (table,) = result["table_res_list"]
    grid = table_grid(table["pred_html"])
    assert grid == {(r, c): text for r, row in enumerate(ROWS) for c, text in enumerate(row)}
    assert len(table["cell_box_list"]) == sum(len(r) for r in ROWS)
    assert set(result.json["res"]) >= {"model_settings", "overall_ocr_res", "table_res_list"}


def test_html_and_xlsx_files_hold_the_same_cells(result, tmp_path):
    result.save_to_html(tmp_path)
    result.save_to_xlsx(tmp_path)
    (html_file,) = tmp_path.glob("*.html")
    (xlsx_file,) = tmp_path.glob("*.xlsx")
    assert table_grid(html_file.read_text(encoding="utf-8")) == table_grid(result["table_res_list"][0]["pred_html"])
    sheet = openpyxl.load_workbook(xlsx_file).active
    cells = [[str(c.value or "").strip() for c in row] for row in sheet.iter_rows()]
    assert cells == ROWS
