"""PaddleX-format OCR datasets: readers, dataset check, torch datasets and the DataModule."""

from .datamodule import OCRDataModule

__all__ = ["OCRDataModule"]
