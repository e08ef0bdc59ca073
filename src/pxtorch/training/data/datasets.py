"""PyTorch datasets over PaddleX-format lists: text detection, text recognition, text-line orientation.

Each reads its split list with :mod:`.formats` (errors name the file and line), decodes images as BGR
(as PaddleOCR's ``DecodeImage``), applies PaddleOCR's training augmentations when ``train=True`` and
returns plain arrays; labels that depend on the model's vocabulary are encoded by the LightningModule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ...processing.image import read_image
from ...processing.rec_resize import cls_resize_norm
from ..targets.db_targets import make_db_targets
from ..transforms.det import DetTrainTransform, det_eval_resize, normalize_det_image
from ..transforms.rec import ClsAug, RecAug, rec_concat, rec_resize_norm_train
from .formats import read_cls_labels, read_cls_list, read_det_list, read_rec_list

__all__ = ["TextDetDataset", "TextRecDataset", "TextlineOriDataset", "collate_det_eval"]


class _RandomMixin:
    """A numpy generator per process, re-seeded from torch's worker seed (so ``seed_everything`` rules)."""

    _rng: np.random.Generator | None = None
    _rng_seed: int | None = None

    @property
    def rng(self) -> np.random.Generator:
        seed = torch.initial_seed()
        if self._rng is None or self._rng_seed != seed:
            self._rng, self._rng_seed = np.random.default_rng(seed % 2**63), seed
        return self._rng


class TextDetDataset(_RandomMixin, Dataset):
    """``images/`` + ``train.txt``/``val.txt`` (PaddleX ``TextDetDataset``).

    Training items: ``image [3, S, S]`` plus the DB targets ``shrink_map``, ``shrink_mask``,
    ``threshold_map``, ``threshold_mask`` (``[S, S]``). Evaluation items: the resized ``image
    [3, H, W]``, the source size ``src_hw`` and the ground truth ``polys``/``ignore`` in source pixels.
    """

    def __init__(
        self,
        dataset_dir: str | Path,
        split: str = "train",
        train: bool = True,
        crop_size: int = 640,
        shrink_ratio: float = 0.4,
        min_text_size: int = 8,
        thresh_min: float = 0.3,
        thresh_max: float = 0.7,
        eval_limit_side_len: int = 736,
        eval_limit_type: str = "min",
    ) -> None:
        root = Path(dataset_dir)
        self.samples = read_det_list(root / f"{split}.txt", root)
        self.train = train
        self.transform = DetTrainTransform(size=(crop_size, crop_size))
        self.target_args = dict(
            shrink_ratio=shrink_ratio, min_text_size=min_text_size, thresh_min=thresh_min, thresh_max=thresh_max
        )
        self.eval_resize = dict(limit_side_len=eval_limit_side_len, limit_type=eval_limit_type)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.samples[index]
        img = read_image(sample.image)
        if not self.train:
            resized, _ = det_eval_resize(img, **self.eval_resize)
            return {
                "image": torch.from_numpy(normalize_det_image(resized)),
                "src_hw": img.shape[:2],
                "polys": [p.astype(np.float32) for p in sample.polys],
                "ignore": list(sample.ignore),
            }
        img, polys, ignore = self.transform(img, list(sample.polys), list(sample.ignore), self.rng)
        targets = make_db_targets(polys, ignore, img.shape[0], img.shape[1], **self.target_args)
        item = {"image": torch.from_numpy(normalize_det_image(img))}
        item.update({k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in targets.items()})
        return item


def collate_det_eval(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Evaluation batches keep per-image sizes and polygons as lists; images are stacked (equal sizes only)."""
    shapes = {tuple(it["image"].shape) for it in items}
    if len(shapes) != 1:
        raise ValueError(f"detection evaluation batches need equal image sizes, got {sorted(shapes)}; use batch size 1")
    return {
        "image": torch.stack([it["image"] for it in items]),
        "src_hw": [it["src_hw"] for it in items],
        "polys": [it["polys"] for it in items],
        "ignore": [it["ignore"] for it in items],
    }


class TextRecDataset(_RandomMixin, Dataset):
    """``train.txt``/``val.txt`` of ``image<TAB>label`` lines + ``dict.txt`` (PaddleX ``MSTextRecDataset``).

    Items: ``image [3, 48, 320]`` (PaddleOCR ``RecResizeImg``) and the label ``text``. Training applies
    ``RecConAug`` (joins another sample with probability ``concat_prob``) and ``RecAug``.
    """

    def __init__(
        self,
        dataset_dir: str | Path,
        split: str = "train",
        train: bool = True,
        image_shape: tuple[int, int, int] = (3, 48, 320),
        max_text_length: int = 25,
        concat_prob: float = 0.5,
        concat_samples: int = 2,
        augment: bool = True,
    ) -> None:
        root = Path(dataset_dir)
        self.samples = read_rec_list(root / f"{split}.txt", root)
        self.train = train
        self.image_shape = tuple(image_shape)
        self.max_length = max_text_length
        self.concat_prob = concat_prob if train else 0.0
        self.concat_samples = concat_samples
        self.aug = RecAug() if train and augment else None

    def __len__(self) -> int:
        return len(self.samples)

    def _load(self, index: int) -> tuple[np.ndarray, str]:
        sample = self.samples[index]
        return read_image(sample.image), sample.text

    def __getitem__(self, index: int) -> dict[str, Any]:
        img, text = self._load(index)
        rng = self.rng
        if self.concat_prob > 0 and rng.random() < self.concat_prob:
            hwc = (self.image_shape[1], self.image_shape[2], self.image_shape[0])
            for other in rng.integers(0, len(self.samples), size=self.concat_samples):
                other_img, other_text = self._load(int(other))
                joined = rec_concat(img, text, other_img, other_text, image_shape=hwc, max_text_length=self.max_length)
                if joined is None:
                    break
                img, text = joined
        if self.aug is not None:
            img = self.aug(img, rng)
        return {"image": torch.from_numpy(rec_resize_norm_train(img, self.image_shape)), "text": text}


class TextlineOriDataset(_RandomMixin, Dataset):
    """``label.txt`` + ``train.txt``/``val.txt`` of ``image class_id`` lines (PaddleX ``ClsDataset``).

    Items: ``image [3, 48, 192]`` (PaddleOCR ``ClsResizeImg``) and ``label`` (int).
    """

    def __init__(
        self,
        dataset_dir: str | Path,
        split: str = "train",
        train: bool = True,
        image_shape: tuple[int, int, int] = (3, 48, 192),
        augment: bool = True,
    ) -> None:
        root = Path(dataset_dir)
        self.labels = read_cls_labels(root / "label.txt")
        self.samples = read_cls_list(root / f"{split}.txt", root, num_classes=len(self.labels))
        self.image_shape = tuple(image_shape)
        self.aug = ClsAug() if train and augment else None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.samples[index]
        img = read_image(sample.image)
        if self.aug is not None:
            img = self.aug(img, self.rng)
        return {"image": torch.from_numpy(cls_resize_norm(img, self.image_shape)), "label": sample.label}
