"""Render the README's document-pipeline figures (docs/*.jpg) with the offline weights.

    .venv/bin/python scripts/make_doc_figures.py [--images ../shared/data/images] [--out docs]

Each figure is the pipeline's own visualisation (``res.img``), downscaled to 1000 px wide:
doc_preprocessor on the boarding pass rotated by 90 degrees, layout_detection on a paper page,
seal_recognition on a rendered seal (tests/seal_render.py), table_recognition on a table crop.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

import pxtorch

REPO = Path(__file__).resolve().parents[1]


def _save(image: Image.Image, path: Path, width: int = 1000) -> None:
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
    image.convert("RGB").save(path, quality=80)
    print(f"wrote {path} ({image.width}x{image.height})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=REPO.parent / "shared" / "data" / "images")
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    page = cv2.imread(str(args.images / "scenes" / "00006737.jpg"))
    doc = pxtorch.pipeline("doc_preprocessor", use_doc_unwarping=False, device="cpu")
    (res,) = doc(np.ascontiguousarray(np.rot90(page, -1)))
    _save(res.img["preprocessed_img"], args.out / "doc_preprocessor_res.jpg")

    layout = pxtorch.pipeline("layout_detection", device="cpu")
    (res,) = layout(str(args.images / "layout" / "paper-image.jpg"))
    _save(res.img["res"], args.out / "layout_detection_res.jpg")

    sys.path.insert(0, str(REPO))
    from tests.seal_render import Seal, render_seal

    seal = pxtorch.pipeline("seal_recognition", device="cpu")
    (res,) = seal(render_seal(Seal("天津君和缘商贸有限公司", "发票专用章", 420)))
    print("seal image keys:", list(res.img))
    _save(res.img[next(k for k in res.img if k.startswith("seal_res_region"))], args.out / "seal_recognition_res.jpg")

    table = pxtorch.pipeline("table_recognition", device="cpu")
    (res,) = table(str(args.images / "tables" / "medal_table.png"))
    print("table image keys:", list(res.img))
    _save(res.img["table_cell_img"], args.out / "table_recognition_res.jpg")
    res.save_to_html(args.out)
    res.save_to_xlsx(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
