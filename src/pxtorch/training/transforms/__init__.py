"""PaddleOCR's training augmentations, re-implemented with OpenCV/numpy (no imgaug)."""

from .det import DetTrainTransform, det_eval_resize, normalize_det_image
from .rec import ClsAug, RandAugment, RecAug, RecConAug, rec_concat, rec_resize_norm_train

__all__ = [
    "ClsAug",
    "DetTrainTransform",
    "RandAugment",
    "RecAug",
    "RecConAug",
    "det_eval_resize",
    "normalize_det_image",
    "rec_concat",
    "rec_resize_norm_train",
]
