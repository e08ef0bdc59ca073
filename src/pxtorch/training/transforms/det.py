"""Text-detection (DB) image transforms: PaddleOCR's training augmentation and evaluation preprocessing.

Training (``PP-OCRv4_mobile_det.yml``, after ``DetLabelEncode``): ``IaaAugment`` (imgaug ``Fliplr(0.5)``,
``Affine(rotate=(-10, 10))``, ``Resize((0.5, 3))``) then ``EastRandomCropData(size=640x640, max_tries=50,
keep_ratio=True)``. :class:`DetTrainTransform` reproduces their geometry without imgaug:

- flip: ``x -> W - x`` (imgaug's keypoint rule);
- rotate about the image centre by ``angle ~ U(rotate)`` degrees (positive = clockwise on screen, as imgaug),
  canvas size kept, corners cut, zero fill;
- resize both sides by one factor ``s ~ U(scale)`` to ``round(H s) x round(W s)``;
- crop as ``EastRandomCropData`` (a window that does not cut through any care text box, chosen among free
  rows / columns), scale it to fit ``size`` keeping the ratio, pad bottom / right with zeros.

Coordinates are continuous (pixel ``i`` spans ``[i, i + 1)``). The four geometric steps are composed into one
affine map and the image is warped once (bilinear), instead of warping, upscaling (imgaug: bicubic) and
resizing in turn: same geometry, one interpolation, and no 3x-enlarged intermediate image.

Evaluation: ``DetResizeForTest`` with no arguments (``limit_side_len 736``, ``limit_type min``) and the
ImageNet ``NormalizeImage`` in BGR order, the same code path as the inference pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ..._pretrained import IMAGENET_MEAN, IMAGENET_STD
from ...processing.det_resize import det_resize
from ...processing.image import normalize, to_chw

__all__ = ["DetTrainTransform", "det_eval_resize", "normalize_det_image"]


def _split_regions(axis: np.ndarray, keep_last: bool) -> list[np.ndarray]:
    """Runs of consecutive values in the sorted index array ``axis``.

    PaddleOCR's ``split_regions`` closes a run only when the next one starts, so the last run is never
    returned (``keep_last=False`` reproduces that).
    """
    breaks = np.flatnonzero(np.diff(axis) != 1) + 1
    runs = np.split(axis, breaks)
    return runs if keep_last else runs[:-1]


def _random_select(axis: np.ndarray, max_size: int, rng: np.random.Generator) -> tuple[int, int]:
    """Two values drawn (with replacement) from ``axis``: ``(min, max)`` clipped to ``[0, max_size - 1]``."""
    pair = rng.choice(axis, size=2)
    lo = int(np.clip(pair.min(), 0, max_size - 1))
    hi = int(np.clip(pair.max(), 0, max_size - 1))
    return lo, hi


def _region_wise_select(regions: list[np.ndarray], rng: np.random.Generator) -> tuple[int, int]:
    """Two regions drawn (with replacement), one value from each: ``(min, max)``."""
    values = [int(rng.choice(regions[int(i)])) for i in rng.choice(len(regions), size=2)]
    return min(values), max(values)


def _boxes(polys: Sequence[np.ndarray]) -> np.ndarray:
    """``[N, 4]`` float64 ``(xmin, ymin, xmax, ymax)`` of each polygon."""
    if not polys:
        return np.zeros((0, 4), dtype=np.float64)
    return np.array([[p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()] for p in polys], dtype=np.float64)


def _not_outside(boxes: np.ndarray, x: float, y: float, w: float, h: float) -> np.ndarray:
    """``[N]`` bool: ``not is_poly_outside_rect`` (a box touching the closed rectangle counts as inside)."""
    return (boxes[:, 2] >= x) & (boxes[:, 0] <= x + w) & (boxes[:, 3] >= y) & (boxes[:, 1] <= y + h)


def _crop_area(
    height: int,
    width: int,
    care_polys: Sequence[np.ndarray],
    min_crop_side_ratio: float,
    max_tries: int,
    rng: np.random.Generator,
    keep_last_region: bool,
) -> tuple[int, int, int, int]:
    """PaddleOCR ``crop_area``: ``(x, y, w, h)`` of a crop window whose borders avoid care text.

    Rows / columns covered by a care polygon's rounded bounding box (``[min, max)``) are blocked; the
    window's sides are drawn from free rows / columns (from two random free runs when there are several),
    must be at least ``min_crop_side_ratio`` of the image, and the window must touch a care polygon.
    Falls back to the whole image. Bounding boxes are clipped to the image before blocking (PaddleOCR
    slices with a negative start there, which blocks nothing).
    """
    free_cols = np.ones(width, dtype=bool)
    free_rows = np.ones(height, dtype=bool)
    for poly in care_polys:
        pts = np.round(poly).astype(np.int64)
        x0, x1 = np.clip([pts[:, 0].min(), pts[:, 0].max()], 0, width)
        y0, y1 = np.clip([pts[:, 1].min(), pts[:, 1].max()], 0, height)
        free_cols[x0:x1] = False
        free_rows[y0:y1] = False
    col_axis = np.flatnonzero(free_cols)
    row_axis = np.flatnonzero(free_rows)
    if len(col_axis) == 0 or len(row_axis) == 0:
        return 0, 0, width, height
    col_regions = _split_regions(col_axis, keep_last_region)
    row_regions = _split_regions(row_axis, keep_last_region)
    boxes = _boxes(care_polys)
    for _ in range(max_tries):
        if len(col_regions) > 1:
            xmin, xmax = _region_wise_select(col_regions, rng)
        else:
            xmin, xmax = _random_select(col_axis, width, rng)
        if len(row_regions) > 1:
            ymin, ymax = _region_wise_select(row_regions, rng)
        else:
            ymin, ymax = _random_select(row_axis, height, rng)
        if xmax - xmin < max(min_crop_side_ratio * width, 1) or ymax - ymin < max(min_crop_side_ratio * height, 1):
            continue
        if _not_outside(boxes, xmin, ymin, xmax - xmin, ymax - ymin).any():
            return xmin, ymin, xmax - xmin, ymax - ymin
    return 0, 0, width, height


def _apply(matrix: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """``(K, 2)`` points through a ``2x3`` affine matrix."""
    return poly @ matrix[:, :2].T + matrix[:, 2]


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """``outer ∘ inner`` for ``2x3`` affine matrices."""
    out = outer[:, :2] @ inner
    out[:, 2] += outer[:, 2]
    return out


class DetTrainTransform:
    """PaddleOCR's DB training augmentation: flip, rotate, rescale, then ``EastRandomCropData``.

    Args:
        size: output ``(H, W)``.
        flip_prob: probability of a horizontal flip.
        rotate: rotation range in degrees (uniform).
        scale: resize factor range (uniform, same factor for both sides).
        crop_max_tries: ``EastRandomCropData.max_tries`` (50 in the PP-OCRv4 configs).
        min_crop_side_ratio: minimum crop side as a fraction of the (resized) image side.
        keep_ratio: fit the crop into ``size`` keeping its aspect ratio and pad with zeros (bottom / right);
            ``False`` stretches it to ``size`` (polygons follow the stretch).
        keep_last_free_region: ``False`` (default) reproduces PaddleOCR's ``split_regions``, which drops the
            last run of free rows / columns: with 3+ runs a crop never reaches the last text row / column, and
            when no window drawn from the remaining runs touches a care box all tries fail and the whole
            image is used. ``True`` draws from every run.
    """

    def __init__(
        self,
        size: tuple[int, int] = (640, 640),
        flip_prob: float = 0.5,
        rotate: tuple[float, float] = (-10, 10),
        scale: tuple[float, float] = (0.5, 3.0),
        crop_max_tries: int = 50,
        min_crop_side_ratio: float = 0.1,
        keep_ratio: bool = True,
        keep_last_free_region: bool = False,
    ) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.flip_prob = float(flip_prob)
        self.rotate = (float(rotate[0]), float(rotate[1]))
        self.scale = (float(scale[0]), float(scale[1]))
        self.crop_max_tries = int(crop_max_tries)
        self.min_crop_side_ratio = float(min_crop_side_ratio)
        self.keep_ratio = bool(keep_ratio)
        self.keep_last_free_region = bool(keep_last_free_region)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(size={self.size}, flip_prob={self.flip_prob}, rotate={self.rotate}, "
            f"scale={self.scale}, crop_max_tries={self.crop_max_tries}, "
            f"min_crop_side_ratio={self.min_crop_side_ratio}, keep_ratio={self.keep_ratio}, "
            f"keep_last_free_region={self.keep_last_free_region})"
        )

    def _augment_matrix(self, height: int, width: int, rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
        """Flip + rotate + resize as one ``2x3`` matrix (continuous coordinates) and the resized ``(H, W)``."""
        matrix = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        if rng.random() < self.flip_prob:
            matrix = np.array([[-1.0, 0.0, float(width)], [0.0, 1.0, 0.0]])
        theta = np.deg2rad(rng.uniform(*self.rotate))
        cos, sin = np.cos(theta), np.sin(theta)
        cx, cy = width / 2.0, height / 2.0
        rotation = np.array([[cos, -sin, cx - cos * cx + sin * cy], [sin, cos, cy - sin * cx - cos * cy]])
        matrix = _compose(rotation, matrix)
        factor = rng.uniform(*self.scale)
        new_h = max(int(np.round(height * factor)), 1)
        new_w = max(int(np.round(width * factor)), 1)
        resize = np.array([[new_w / width, 0.0, 0.0], [0.0, new_h / height, 0.0]])
        return _compose(resize, matrix), new_h, new_w

    def __call__(
        self,
        img: np.ndarray,
        polys: Sequence[np.ndarray],
        ignore: Sequence[bool],
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, list[np.ndarray], list[bool]]:
        """Augment one image and its polygons.

        Args:
            img: ``HxWx3`` uint8 BGR image.
            polys: ``(K, 2)`` float polygons in pixels.
            ignore: don't-care flag per polygon (ignored polygons do not steer the crop).
            rng: the only source of randomness.
        Returns:
            ``(image, polys, ignore)``: an ``size[0] x size[1] x 3`` image and the float32 polygons that are not
            entirely outside the crop, with their flags.
        """
        if len(polys) != len(ignore):
            raise ValueError(f"got {len(polys)} polygons but {len(ignore)} ignore flags")
        height, width = img.shape[:2]
        out_h, out_w = self.size
        matrix, new_h, new_w = self._augment_matrix(height, width, rng)
        moved = [_apply(matrix, np.asarray(p, dtype=np.float64).reshape(-1, 2)) for p in polys]

        care = [p for p, tag in zip(moved, ignore, strict=True) if not tag]
        cx, cy, cw, ch = _crop_area(
            new_h, new_w, care, self.min_crop_side_ratio, self.crop_max_tries, rng, self.keep_last_free_region
        )
        if self.keep_ratio:
            sx = sy = min(out_w / cw, out_h / ch)
            valid_w, valid_h = int(cw * sx), int(ch * sy)
        else:
            sx, sy = out_w / cw, out_h / ch
            valid_w, valid_h = out_w, out_h
        crop = np.array([[sx, 0.0, -cx * sx], [0.0, sy, -cy * sy]])
        matrix = _compose(crop, matrix)

        # Continuous -> pixel-index coordinates for OpenCV (pixel centres at integers): q' = A q + A.5 + t - .5;
        # the source gets a 1-px replicated frame (index + 1) so that edges interpolate as cv2.resize does
        # (no dark rim when enlarging), and zeros beyond it (the corners a rotation brings in).
        pixel = matrix.copy()
        pixel[:, 2] += matrix[:, :2].sum(axis=1) * (0.5 - 1.0) - 0.5
        framed = cv2.copyMakeBorder(img, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
        image = cv2.warpAffine(
            framed, pixel, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )
        if image.ndim == 2:
            image = image[:, :, None]
        image[valid_h:] = 0
        image[:, valid_w:] = 0

        out_polys: list[np.ndarray] = []
        out_ignore: list[bool] = []
        for poly, tag in zip(moved, ignore, strict=True):
            new_poly = _apply(crop, poly)
            box = _boxes([new_poly])
            if _not_outside(box, 0, 0, valid_w, valid_h)[0]:
                out_polys.append(new_poly.astype(np.float32))
                out_ignore.append(bool(tag))
        return image, out_polys, out_ignore


def det_eval_resize(
    img: np.ndarray, limit_side_len: int = 736, limit_type: str = "min", max_side_limit: int = 4000
) -> tuple[np.ndarray, np.ndarray]:
    """PaddleOCR's eval ``DetResizeForTest`` (no arguments in the det configs: ``736`` / ``"min"`` / ``4000``).

    Returns:
        ``(resized, shape)``: the resized HxWxC image (sides multiples of 32) and
        ``[src_h, src_w, ratio_h, ratio_w]`` (float64).
    """
    return det_resize(img, limit_side_len=limit_side_len, limit_type=limit_type, max_side_limit=max_side_limit)


def normalize_det_image(img: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 BGR -> float32 ``[3, H, W]``: ``(img / 255 - mean) / std`` with ImageNet mean / std applied
    in the image's own (BGR) channel order, exactly as the inference pipeline prepares detector input."""
    return to_chw(normalize(img, IMAGENET_MEAN, IMAGENET_STD, 1.0 / 255.0))
