"""Training-time transforms of text recognition and text-line orientation (PaddleOCR ``rec_img_aug.py``).

Every transform takes an explicit ``np.random.Generator`` (PaddleOCR draws from the global ``random``
and ``np.random``), so a seed fixes the result. Images are ``H x W x 3`` uint8 BGR as decoded.

PaddleOCR facts used here:

- ``RecAug`` (PP-OCRv4/v5 rec configs, all defaults): with ``tia_prob`` 0.4 and only when ``h >= 20``
  and ``w >= 20``: ``tia_distort(segment=randint(3, 6))`` then ``tia_stretch(segment=randint(3, 6))``;
  ``tia_perspective`` runs inside the same 0.4 branch whatever the size. Then
  ``BaseDataAugmentation``, each step with probability 0.4, in this order: crop (only if ``h, w >= 20``:
  cut ``randint(1, 8)`` rows, capped at ``h - 1``, from the top or the bottom), Gaussian blur (separable
  5-tap kernel, sigma 1), HSV (value channel times ``1 +- 0.001 * U``, truncated to uint8), jitter
  (shift copies by up to ``int(U * 0.01 * min(h, w))`` px, a no-op below 100 px), Gaussian noise
  (``0.5 * N(0, sqrt(0.1))``, clipped and truncated), reverse (``255 - img``).
- TIA (``text_image_aug``): the control points and random offsets are PaddleOCR's; the warp is a
  moving-least-squares *similarity* deformation evaluated on a 100-px grid (plus the last row/column)
  as PaddleOCR's ``WarpMLS`` does. Here it is vectorised, the grid displacement is interpolated
  bilinearly to every pixel and applied with ``cv2.remap`` (bilinear, replicated border, which is
  PaddleOCR's coordinate clipping); PaddleOCR interpolates per 100-px cell and truncates instead of
  rounding, so results agree to about a pixel, not bit for bit.
- ``RecConAug`` (``prob 0.5, ext_data_num 2, image_shape [48, 320, 3], max_text_length 25``), see
  :class:`RecConAug`.
- ``RecResizeImg`` / ``resize_norm_img(padding=True)``: see :func:`rec_resize_norm_train`.
- ``configs/cls/cls_mv3.yml`` training: ``BaseDataAugmentation`` (defaults, no TIA) then
  ``RandAugment`` (``prob 0.5``, 2 ops of magnitude 5 out of 14, grey 128 fill), then
  ``ClsResizeImg [3, 48, 192]`` (= :func:`pxtorch.processing.rec_resize.cls_resize_norm`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image, ImageEnhance, ImageOps

__all__ = [
    "BaseDataAugmentation",
    "ClsAug",
    "RandAugment",
    "RecAug",
    "RecConAug",
    "rec_concat",
    "rec_resize_norm_train",
    "tia_distort",
    "tia_perspective",
    "tia_stretch",
    "warp_mls",
]


# --------------------------------------------------------------------------- TIA (moving least squares)


def _mls_similarity(points: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Map ``points [N, 2]`` with the MLS similarity deformation taking controls ``p [K, 2]`` to ``q [K, 2]``."""
    diff = p[None, :, :] - points[:, None, :]  # [N, K, 2]
    d2 = (diff**2).sum(-1)
    exact = d2 == 0
    w = np.where(exact, 0.0, 1.0 / np.where(exact, 1.0, d2))
    sw = w.sum(1, keepdims=True)
    p_star = (w @ p) / sw
    q_star = (w @ q) / sw
    p_hat = p[None] - p_star[:, None]  # [N, K, 2]
    q_hat = q[None] - q_star[:, None]
    mu = (w * (p_hat**2).sum(-1)).sum(1, keepdims=True)
    v = points - p_star  # [N, 2]
    v_perp = np.stack([-v[:, 1], v[:, 0]], -1)
    p_perp = np.stack([-p_hat[..., 1], p_hat[..., 0]], -1)
    a1 = (p_hat * v[:, None]).sum(-1)
    a2 = (p_perp * v[:, None]).sum(-1)
    b1 = (p_hat * v_perp[:, None]).sum(-1)
    b2 = (p_perp * v_perp[:, None]).sum(-1)
    wm = w / mu
    out_x = (wm * (a1 * q_hat[..., 0] - a2 * q_hat[..., 1])).sum(1) + q_star[:, 0]
    out_y = (wm * (-b1 * q_hat[..., 0] + b2 * q_hat[..., 1])).sum(1) + q_star[:, 1]
    out = np.stack([out_x, out_y], -1)
    hit = exact.any(1)
    if hit.any():  # a grid point on a control point maps exactly onto its partner
        out[hit] = q[exact[hit].argmax(1)]
    return out


def _grid(n: int, step: int) -> np.ndarray:
    g = list(range(0, n, step))
    if g[-1] != n - 1:
        g.append(n - 1)
    return np.asarray(g, dtype=np.float64)


def _interp_axis(grid: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower index, upper index and weight of every pixel ``0..n-1`` between ``grid`` nodes."""
    x = np.arange(n, dtype=np.float64)
    hi = np.clip(np.searchsorted(grid, x, side="right"), 1, max(len(grid) - 1, 1))
    lo = hi - 1
    if len(grid) == 1:
        return np.zeros(n, int), np.zeros(n, int), np.zeros(n)
    t = (x - grid[lo]) / (grid[hi] - grid[lo])
    return lo, hi, t


def warp_mls(
    src: np.ndarray, src_pts: Sequence[Sequence[float]], dst_pts: Sequence[Sequence[float]], grid_size: int = 100
) -> np.ndarray:
    """Warp ``src`` so that ``src_pts`` land on ``dst_pts`` (same output size), PaddleOCR ``WarpMLS``-style.

    For every output pixel the source position is given by the MLS similarity map ``dst_pts -> src_pts``,
    evaluated on a ``grid_size`` grid and bilinearly interpolated in between.
    """
    h, w = src.shape[:2]
    p = np.asarray(dst_pts, dtype=np.float64)
    q = np.asarray(src_pts, dtype=np.float64)
    gx, gy = _grid(w, grid_size), _grid(h, grid_size)
    nodes = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2)  # (x, y), row-major over gy
    delta = (_mls_similarity(nodes, p, q) - nodes).reshape(len(gy), len(gx), 2)
    xl, xh, xt = _interp_axis(gx, w)
    yl, yh, yt = _interp_axis(gy, h)
    rows = delta[:, xl] * (1 - xt)[None, :, None] + delta[:, xh] * xt[None, :, None]  # [gy, w, 2]
    full = rows[yl] * (1 - yt)[:, None, None] + rows[yh] * yt[:, None, None]  # [h, w, 2]
    map_x = (np.arange(w)[None, :] + full[..., 0]).astype(np.float32)
    map_y = (np.arange(h)[:, None] + full[..., 1]).astype(np.float32)
    return cv2.remap(src, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _corners(w: int, h: int) -> list[list[float]]:
    return [[0, 0], [w, 0], [w, h], [0, h]]


def tia_distort(src: np.ndarray, rng: np.random.Generator, segment: int = 4) -> np.ndarray:
    """Random local distortion: corners and ``segment - 1`` inner top/bottom points jitter by < ``w / segment / 3``."""
    h, w = src.shape[:2]
    cut = w // segment
    thresh = max(cut // 3, 1)
    half = thresh * 0.5

    def r() -> int:
        return int(rng.integers(thresh))

    src_pts = _corners(w, h)
    dst_pts = [[r(), r()], [w - r(), r()], [w - r(), h - r()], [r(), h - r()]]
    for i in range(1, segment):
        src_pts += [[cut * i, 0], [cut * i, h]]
        dst_pts += [[cut * i + r() - half, r() - half], [cut * i + r() - half, h + r() - half]]
    return warp_mls(src, src_pts, dst_pts)


def tia_stretch(src: np.ndarray, rng: np.random.Generator, segment: int = 4) -> np.ndarray:
    """Random horizontal stretch: each inner vertical cut moves by ``U{0..thresh-1} - thresh / 2``."""
    h, w = src.shape[:2]
    cut = w // segment
    thresh = max(cut * 4 // 5, 1)
    half = thresh * 0.5
    src_pts, dst_pts = _corners(w, h), _corners(w, h)
    for i in range(1, segment):
        move = int(rng.integers(thresh)) - half
        src_pts += [[cut * i, 0], [cut * i, h]]
        dst_pts += [[cut * i + move, 0], [cut * i + move, h]]
    return warp_mls(src, src_pts, dst_pts)


def tia_perspective(src: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random vertical perspective: each corner moves inwards by ``< h / 2``."""
    h, w = src.shape[:2]
    thresh = max(h // 2, 1)

    def r() -> int:
        return int(rng.integers(thresh))

    dst_pts = [[0, r()], [w, r()], [w, h - r()], [0, h - r()]]
    return warp_mls(src, _corners(w, h), dst_pts)


# --------------------------------------------------------------------------- BaseDataAugmentation / RecAug


def _flag(rng: np.random.Generator) -> int:
    return 1 if rng.random() > 0.5000001 else -1


def _get_crop(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h = img.shape[0]
    top = min(int(rng.integers(1, 9)), h - 1)
    return img[top:].copy() if rng.integers(0, 2) else img[: h - top].copy()


def _hsv_aug(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
    delta = 0.001 * rng.random() * _flag(rng)
    hsv[:, :, 2] = (hsv[:, :, 2] * (1 + delta)).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def _jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    if h <= 10 or w <= 10:
        return img
    s = int(rng.random() * min(h, w) * 0.01)
    src, out = img, img.copy()
    for i in range(s):
        out[i:, i:, :] = src[: h - i, : w - i, :]
    return out


def _gauss_noise(img: np.ndarray, rng: np.random.Generator, mean: float = 0.0, var: float = 0.1) -> np.ndarray:
    noise = rng.normal(mean, var**0.5, img.shape)
    return np.clip(img + 0.5 * noise, 0, 255).astype(np.uint8)


class BaseDataAugmentation:
    """PaddleOCR ``BaseDataAugmentation``: crop, blur, HSV, jitter, noise, reverse; each with its probability."""

    def __init__(
        self,
        crop_prob: float = 0.4,
        reverse_prob: float = 0.4,
        noise_prob: float = 0.4,
        jitter_prob: float = 0.4,
        blur_prob: float = 0.4,
        hsv_aug_prob: float = 0.4,
    ) -> None:
        self.crop_prob = crop_prob
        self.reverse_prob = reverse_prob
        self.noise_prob = noise_prob
        self.jitter_prob = jitter_prob
        self.blur_prob = blur_prob
        self.hsv_aug_prob = hsv_aug_prob
        self._kernel = cv2.getGaussianKernel(ksize=5, sigma=1, ktype=cv2.CV_32F)

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``H x W x 3`` uint8 -> augmented uint8 (the height may shrink by the crop)."""
        h, w = img.shape[:2]
        if rng.random() <= self.crop_prob and h >= 20 and w >= 20:
            img = _get_crop(img, rng)
        if rng.random() <= self.blur_prob:
            img = cv2.sepFilter2D(img, -1, self._kernel, self._kernel)
        if rng.random() <= self.hsv_aug_prob:
            img = _hsv_aug(img, rng)
        if rng.random() <= self.jitter_prob:
            img = _jitter(img, rng)
        if rng.random() <= self.noise_prob:
            img = _gauss_noise(img, rng)
        if rng.random() <= self.reverse_prob:
            img = 255 - img
        return img


class RecAug:
    """PaddleOCR ``RecAug`` (PP-OCRv4/v5 rec training): TIA with ``tia_prob`` then :class:`BaseDataAugmentation`.

    All probabilities default to 0.4 as in PaddleOCR; ``use_tia=False`` skips the TIA step.
    """

    def __init__(
        self,
        tia_prob: float = 0.4,
        crop_prob: float = 0.4,
        reverse_prob: float = 0.4,
        noise_prob: float = 0.4,
        jitter_prob: float = 0.4,
        blur_prob: float = 0.4,
        hsv_aug_prob: float = 0.4,
        use_tia: bool = True,
    ) -> None:
        self.tia_prob = tia_prob if use_tia else 0.0
        self.bda = BaseDataAugmentation(crop_prob, reverse_prob, noise_prob, jitter_prob, blur_prob, hsv_aug_prob)

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``H x W x 3`` uint8 -> augmented ``H' x W x 3`` uint8."""
        h, w = img.shape[:2]
        if self.tia_prob > 0 and rng.random() <= self.tia_prob:
            if h >= 20 and w >= 20:
                img = tia_distort(img, rng, int(rng.integers(3, 7)))
                img = tia_stretch(img, rng, int(rng.integers(3, 7)))
            img = tia_perspective(img, rng)
        return self.bda(img, rng)


# --------------------------------------------------------------------------- RecConAug


def rec_concat(
    img_a: np.ndarray,
    text_a: str,
    img_b: np.ndarray,
    text_b: str,
    image_shape: tuple[int, int, int] = (48, 320, 3),
    max_text_length: int = 25,
    max_wh_ratio: float | None = None,
) -> tuple[np.ndarray, str] | None:
    """Join two text-line crops side by side (PaddleOCR ``RecConAug.merge_ext_data``) or reject them.

    Rejected (``None``) when ``len(text_a) + len(text_b) > max_text_length`` (raw string lengths) or when
    ``w_a / h_a + w_b / h_b > max_wh_ratio`` (default ``image_shape[1] / image_shape[0]``, 320 / 48).
    Otherwise both are resized (bilinear) to height ``H = image_shape[0]`` and width
    ``round(w / h * H)`` and concatenated; the text is ``text_a + text_b``.
    """
    if len(text_a) + len(text_b) > max_text_length:
        return None
    limit = image_shape[1] / image_shape[0] if max_wh_ratio is None else max_wh_ratio
    if img_a.shape[1] / img_a.shape[0] + img_b.shape[1] / img_b.shape[0] > limit:
        return None
    height = image_shape[0]
    parts = [cv2.resize(im, (max(1, round(im.shape[1] / im.shape[0] * height)), height)) for im in (img_a, img_b)]
    return np.concatenate(parts, axis=1), text_a + text_b


class RecConAug:
    """PaddleOCR ``RecConAug``: append up to ``ext_data_num`` other samples to the right of this one.

    Exact rule (PaddleOCR): with probability ``prob`` (skipped when ``U > prob``), go through the
    ``ext_data_num`` extra samples in order; each is joined with :func:`rec_concat` to the *current*
    (possibly already joined) image and text; at the first rejection stop and keep what was joined so
    far. PaddleOCR's dataset draws the extra samples uniformly at random from the whole training list
    (``np.random.randint(len)``, with replacement) and passes them through the transforms before
    ``ext_op_transform_idx`` (1 for rec: only ``DecodeImage``), i.e. raw BGR image + raw label text,
    no augmentation. ``RecConAug`` runs before ``RecAug`` and before label encoding, so the joined text
    is then encoded (and may still be dropped there).
    """

    def __init__(
        self,
        prob: float = 0.5,
        image_shape: tuple[int, int, int] = (48, 320, 3),
        max_text_length: int = 25,
        ext_data_num: int = 2,
    ) -> None:
        self.prob = prob
        self.image_shape = tuple(image_shape)
        self.max_text_length = max_text_length
        self.ext_data_num = ext_data_num
        self.max_wh_ratio = image_shape[1] / image_shape[0]

    def __call__(
        self,
        img: np.ndarray,
        text: str,
        ext: Sequence[tuple[np.ndarray, str]],
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, str]:
        """``ext``: ``ext_data_num`` (image, text) pairs drawn at random from the dataset."""
        if rng.random() > self.prob:
            return img, text
        for ext_img, ext_text in ext[: self.ext_data_num]:
            joined = rec_concat(img, text, ext_img, ext_text, self.image_shape, self.max_text_length, self.max_wh_ratio)
            if joined is None:
                break
            img, text = joined
        return img, text


# --------------------------------------------------------------------------- resize


def rec_resize_norm_train(img: np.ndarray, image_shape: tuple[int, int, int] = (3, 48, 320)) -> np.ndarray:
    """PaddleOCR ``resize_norm_img(padding=True)``: fixed-size float32 ``[C, H, W]`` in [-1, 1].

    The crop is resized (bilinear) to height ``H`` and width ``min(W, ceil(H * w / h))`` and zero-padded on
    the right to ``W``. For ``w / h <= W / H`` this equals the inference resize
    :func:`pxtorch.processing.rec_resize.rec_resize_norm` (wider crops are squeezed here, never widened).
    """
    c, height, width = image_shape
    h, w = img.shape[:2]
    if h == 0 or w == 0:
        raise ValueError(f"empty crop of shape {img.shape}")
    resized_w = min(width, math.ceil(height * (w / float(h))))
    resized = cv2.resize(img, (resized_w, height)).astype(np.float32)
    if resized.ndim == 2:
        resized = resized[:, :, None]
    out = np.zeros((c, height, width), dtype=np.float32)
    out[:, :, :resized_w] = (resized.transpose(2, 0, 1) / 255.0 - 0.5) / 0.5
    return out


# --------------------------------------------------------------------------- RandAugment / ClsAug


def _sign(rng: np.random.Generator) -> int:
    return 1 if rng.integers(0, 2) else -1


class RandAugment:
    """PaddleOCR ``RandAugment`` (``ppocr/data/imaug/randaugment.py``), own PIL implementation.

    With probability ``prob``: ``num_layers`` ops drawn uniformly (with replacement) from 14, each at the
    fixed level ``magnitude / 10`` of its range: shearX/Y 0.3 (bicubic), translateX/Y 150/331 of the size,
    rotate 30 deg (always counter-clockwise, grey corners), color/contrast/sharpness/brightness
    ``1 +- 0.9``, posterize ``int(4 * level)`` bits, solarize ``256 * level``, autocontrast, equalize,
    invert; all at level 0.5 by default. Signs are random where PaddleOCR draws them; geometric ops fill
    with ``fillcolor``. The uint8 BGR array is handed to PIL as is (as PaddleOCR does).
    """

    OPS = (
        "shearX",
        "shearY",
        "translateX",
        "translateY",
        "rotate",
        "color",
        "posterize",
        "solarize",
        "contrast",
        "sharpness",
        "brightness",
        "autocontrast",
        "equalize",
        "invert",
    )

    def __init__(
        self,
        prob: float = 0.5,
        num_layers: int = 2,
        magnitude: int = 5,
        fillcolor: tuple[int, int, int] = (128, 128, 128),
    ) -> None:
        self.prob = prob
        self.num_layers = num_layers
        self.fillcolor = tuple(fillcolor)
        level = magnitude / 10
        self.levels = {
            "shearX": 0.3 * level,
            "shearY": 0.3 * level,
            "translateX": 150.0 / 331 * level,
            "translateY": 150.0 / 331 * level,
            "rotate": 30 * level,
            "color": 0.9 * level,
            "posterize": int(4.0 * level),
            "solarize": 256.0 * level,
            "contrast": 0.9 * level,
            "sharpness": 0.9 * level,
            "brightness": 0.9 * level,
        }

    def apply(self, name: str, img: Image.Image, rng: np.random.Generator) -> Image.Image:
        """One op at its configured level."""
        m = self.levels.get(name, 0)
        affine, bicubic, fill = Image.Transform.AFFINE, Image.Resampling.BICUBIC, self.fillcolor
        if name == "shearX":
            return img.transform(img.size, affine, (1, m * _sign(rng), 0, 0, 1, 0), bicubic, fillcolor=fill)
        if name == "shearY":
            return img.transform(img.size, affine, (1, 0, 0, m * _sign(rng), 1, 0), bicubic, fillcolor=fill)
        if name == "translateX":
            return img.transform(img.size, affine, (1, 0, m * img.size[0] * _sign(rng), 0, 1, 0), fillcolor=fill)
        if name == "translateY":
            return img.transform(img.size, affine, (1, 0, 0, 0, 1, m * img.size[1] * _sign(rng)), fillcolor=fill)
        if name == "rotate":
            rot = img.convert("RGBA").rotate(m)
            return Image.composite(rot, Image.new("RGBA", rot.size, (128,) * 4), rot).convert(img.mode)
        if name in ("color", "contrast", "sharpness", "brightness"):
            enhancer = {
                "color": ImageEnhance.Color,
                "contrast": ImageEnhance.Contrast,
                "sharpness": ImageEnhance.Sharpness,
                "brightness": ImageEnhance.Brightness,
            }[name]
            return enhancer(img).enhance(1 + m * _sign(rng))
        if name == "posterize":
            return ImageOps.posterize(img, int(m))
        if name == "solarize":
            return ImageOps.solarize(img, m)
        if name == "autocontrast":
            return ImageOps.autocontrast(img)
        if name == "equalize":
            return ImageOps.equalize(img)
        if name == "invert":
            return ImageOps.invert(img)
        raise KeyError(name)

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``H x W x 3`` uint8 -> same shape uint8."""
        if rng.random() > self.prob:
            return img
        pil = Image.fromarray(np.ascontiguousarray(img))
        for _ in range(self.num_layers):
            pil = self.apply(self.OPS[int(rng.integers(len(self.OPS)))], pil, rng)
        return np.asarray(pil).copy()


class ClsAug:
    """Text-line orientation training augmentation of ``configs/cls/cls_mv3.yml``.

    :class:`BaseDataAugmentation` (defaults: every step 0.4, no TIA) then :class:`RandAugment`
    (``prob 0.5``). Resize afterwards with :func:`pxtorch.processing.rec_resize.cls_resize_norm`
    (``ClsResizeImg [3, 48, 192]``).
    """

    def __init__(self, bda: BaseDataAugmentation | None = None, randaugment: RandAugment | None = None) -> None:
        self.bda = bda or BaseDataAugmentation()
        self.randaugment = randaugment or RandAugment()

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``H x W x 3`` uint8 -> augmented uint8."""
        return self.randaugment(self.bda(img, rng), rng)
