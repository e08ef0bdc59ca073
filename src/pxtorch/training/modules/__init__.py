"""LightningModules: one per PaddleX OCR task."""

from .base import OCRModule
from .text_det import TextDetModule
from .text_rec import TextRecModule
from .textline_ori import TextlineOriModule

MODULES: dict[str, type[OCRModule]] = {m.__name__: m for m in (TextDetModule, TextRecModule, TextlineOriModule)}

__all__ = ["MODULES", "OCRModule", "TextDetModule", "TextRecModule", "TextlineOriModule"]
