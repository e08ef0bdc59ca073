"""Table HTML -> grid of cells -> ``.xlsx`` (merged ranges for ``colspan``/``rowspan``).

:func:`parse_html_table` places the ``<td>``/``<th>`` cells of the first ``<table>`` on a grid with the HTML
rule (each cell takes the next column not covered by a ``rowspan`` from above); :func:`html_to_xlsx` writes
that grid with openpyxl (``pip install openpyxl``), one merged range per spanning cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

__all__ = ["TableCell", "html_to_xlsx", "parse_html_table", "table_grid"]


@dataclass(frozen=True)
class TableCell:
    """A cell at 0-based ``(row, col)`` spanning ``rowspan`` x ``colspan``; ``text`` has tags removed."""

    row: int
    col: int
    rowspan: int
    colspan: int
    text: str


class _TableParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[tuple[int, int, str]]] = []  # per row: (rowspan, colspan, text)
        self._depth = 0  # nesting level of <table>; only the first top-level table is read
        self._done = False
        self._cell: list[str] | None = None
        self._span = (1, 1)

    @staticmethod
    def _int(value: str | None) -> int:
        try:
            return max(1, int(str(value).strip().strip("\"'")))
        except (TypeError, ValueError):
            return 1

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._done:
            return
        if tag == "table":
            self._depth += 1
        elif self._depth == 1 and tag == "tr":
            self.rows.append([])
        elif self._depth == 1 and tag in ("td", "th"):
            if not self.rows:
                self.rows.append([])
            a = dict(attrs)
            self._span = (self._int(a.get("rowspan")), self._int(a.get("colspan")))
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if self._done:
            return
        if tag == "table":
            self._depth -= 1
            if self._depth == 0:
                self._done = True
        elif self._depth == 1 and tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append((*self._span, "".join(self._cell)))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse_html_table(html: str) -> list[TableCell]:
    """The cells of the first table in ``html``, in document order, with grid positions."""
    parser = _TableParser()
    parser.feed(html)
    parser.close()
    taken: set[tuple[int, int]] = set()
    cells: list[TableCell] = []
    for r, row in enumerate(parser.rows):
        c = 0
        for rowspan, colspan, text in row:
            while (r, c) in taken:
                c += 1
            cells.append(TableCell(r, c, rowspan, colspan, text))
            taken.update((r + i, c + j) for i in range(rowspan) for j in range(colspan))
            c += colspan
    return cells


def table_grid(html: str) -> dict[tuple[int, int], str]:
    """``{(row, col): text}`` for the top-left position of every cell (whitespace-normalised text)."""
    return {(cell.row, cell.col): " ".join(cell.text.split()) for cell in parse_html_table(html)}


def html_to_xlsx(html: str, path: str | Path, sheet_title: str = "Sheet1") -> Path:
    """Write the first table of ``html`` to ``path`` (``.xlsx``): texts at their grid cells, spans merged."""
    try:
        from openpyxl import Workbook
    except ImportError as e:  # optional dependency
        raise ImportError("saving tables as .xlsx needs openpyxl: pip install openpyxl") from e
    wb = Workbook()
    ws = wb.active
    ws.title = sheet_title
    for cell in parse_html_table(html):
        target = ws.cell(row=cell.row + 1, column=cell.col + 1, value=cell.text or None)
        if cell.text.startswith("="):  # a text, not a formula
            target.data_type = "s"
        if cell.rowspan > 1 or cell.colspan > 1:
            ws.merge_cells(
                start_row=cell.row + 1,
                start_column=cell.col + 1,
                end_row=cell.row + cell.rowspan,
                end_column=cell.col + cell.colspan,
            )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path
