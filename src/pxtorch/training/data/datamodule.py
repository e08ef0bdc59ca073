"""One LightningDataModule for the three PaddleX OCR dataset formats (``task`` picks which)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from torch.utils.data import DataLoader, Dataset

from ...processing.charset import Charset
from .datasets import TextDetDataset, TextlineOriDataset, TextRecDataset, collate_det_eval
from .formats import read_cls_labels, read_dict

__all__ = ["TASKS", "OCRDataModule", "require_dataset_dir"]

TASKS = {"text_det": TextDetDataset, "text_rec": TextRecDataset, "textline_ori": TextlineOriDataset}
_ALIASES = {"text_detection": "text_det", "text_recognition": "text_rec", "textline_orientation": "textline_ori"}


def require_dataset_dir(dataset_dir: str | Path | None) -> Path:
    """``dataset_dir`` as a path, or a clear error naming the setting when it is not a directory."""
    if not dataset_dir or not Path(dataset_dir).is_dir():
        raise FileNotFoundError(f"data.dataset_dir={dataset_dir!r} is not a directory (a PaddleX-format dataset)")
    return Path(dataset_dir)


class OCRDataModule(L.LightningDataModule):
    """Train/val loaders over a PaddleX-format dataset directory.

    Args:
        task: ``text_det``, ``text_rec`` or ``textline_ori`` (PaddleX module names work too).
        dataset_dir: the dataset root (``train.txt``, ``val.txt``, ``images/`` …).
        batch_size: training batch size per device.
        eval_batch_size: validation batch size per device (detection evaluates at per-image sizes: 1).
        num_workers: loader worker processes.
        train_args / eval_args: keyword arguments for the task's dataset class (augmentation settings).
    """

    def __init__(
        self,
        task: str,
        dataset_dir: str,
        batch_size: int = 8,
        eval_batch_size: int | None = None,
        num_workers: int = 2,
        train_args: dict[str, Any] | None = None,
        eval_args: dict[str, Any] | None = None,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        task = _ALIASES.get(task, task)
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; choose one of {sorted(TASKS)}")
        self.task = task
        self.dataset_dir = require_dataset_dir(dataset_dir)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or (1 if task == "text_det" else batch_size)
        self.num_workers = num_workers
        self.train_args = dict(train_args or {})
        self.eval_args = dict(eval_args or {})
        self.pin_memory = pin_memory
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

    # -- what the model needs to know before training --------------------------------------------
    def charset(self, use_space_char: bool = True) -> Charset | None:
        """The dataset's ``dict.txt`` as a charset (recognition), else ``None``."""
        path = self.dataset_dir / "dict.txt"
        return Charset(read_dict(path), use_space_char) if self.task == "text_rec" and path.is_file() else None

    def class_names(self) -> list[str] | None:
        """Class names from ``label.txt`` (orientation), else ``None``."""
        path = self.dataset_dir / "label.txt"
        return read_cls_labels(path) if self.task == "textline_ori" else None

    # -- Lightning hooks ----------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        cls = TASKS[self.task]
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = cls(self.dataset_dir, "train", train=True, **self.train_args)
        if stage in (None, "fit", "validate", "test") and self.val_set is None:
            self.val_set = cls(self.dataset_dir, "val", train=False, **self.eval_args)

    def _loader(self, dataset: Dataset, batch_size: int, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            drop_last=False,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=self.pin_memory,
            collate_fn=collate_det_eval if self.task == "text_det" and not shuffle else None,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()
