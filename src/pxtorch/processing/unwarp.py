"""UVDoc post-processing: apply the predicted backward map to the full-resolution page.

PaddleX (``image_unwarping/modeling/uvdoc.py`` ``UVDocNet.forward`` + ``processors.py``
``DocTrPostProcess``; transformers' ``UVDocImageProcessor.post_process_document_rectification`` is the
same):

1. the page goes in as BGR float ``/255`` (:func:`page_tensor`);
2. the ``[B, 2, h, w]`` map is upsampled to the page size (bilinear, ``align_corners=True``), moved to
   ``[B, H, W, 2]`` and used by ``grid_sample`` (bilinear, zero padding, ``align_corners=True``)
   (:func:`unwarp_tensor`);
3. ``DocTrPostProcess``: CHW -> HWC, ``* 255``, channels reversed, ``astype(uint8)`` (truncation)
   (:func:`doctr_image`). Because the page went in BGR, PaddleX's ``doctr_img`` is in **RGB** order;
   PaddleX's ``doc_preprocessor`` reverses it back (``doctr_img[:, :, ::-1]``) before OCR.
   :func:`unwarp_images` returns that BGR image.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .image import normalize, to_chw

__all__ = ["doctr_image", "page_tensor", "unwarp_images", "unwarp_tensor"]


def page_tensor(image: np.ndarray) -> torch.Tensor:
    """BGR uint8 ``HxWx3`` -> ``[1, 3, H, W]`` float32 BGR ``/255`` (PaddleX ``Normalize(0, 1, 1/255)``)."""
    return torch.from_numpy(to_chw(normalize(image, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))))[None]


def unwarp_tensor(image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Sample ``image`` ``[B, C, H, W]`` with the backward map ``grid`` ``[B, 2, h, w]`` -> ``[B, C, H, W]``.

    ``grid`` holds ``grid_sample`` coordinates (channel 0 = x, 1 = y, -1..1 = first..last pixel centre);
    it is upsampled to ``H x W`` first. Points outside the page read zeros.
    """
    if grid.dim() != 4 or grid.shape[1] != 2:
        raise ValueError(f"expected a backward map [B, 2, h, w], got shape {tuple(grid.shape)}")
    if image.dim() != 4 or image.shape[0] != grid.shape[0]:
        raise ValueError(f"expected pages [B={grid.shape[0]}, C, H, W], got shape {tuple(image.shape)}")
    grid = grid.to(device=image.device, dtype=image.dtype)
    full = F.interpolate(grid, size=tuple(image.shape[-2:]), mode="bilinear", align_corners=True)
    return F.grid_sample(image, full.permute(0, 2, 3, 1), mode="bilinear", padding_mode="zeros", align_corners=True)


def doctr_image(sampled: torch.Tensor | np.ndarray, scale: float = 255.0) -> np.ndarray:
    """PaddleX ``DocTrPostProcess``: ``[3, H, W]`` (or ``[1, 3, H, W]``) float -> ``HxWx3`` uint8, channels reversed.

    Values are clipped to ``[0, 255]`` before the truncating cast (a no-op for a ``[0, 1]`` page; PaddleX
    itself casts without clipping).
    """
    arr = sampled.detach().float().cpu().numpy() if isinstance(sampled, torch.Tensor) else np.asarray(sampled)
    arr = arr.astype(np.float32, copy=False)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 3 or arr.shape[0] != 3:
        raise ValueError(f"expected a [3, H, W] image, got shape {arr.shape}")
    hwc = arr.transpose(1, 2, 0) * np.float32(scale)
    return np.ascontiguousarray(np.clip(hwc[:, :, ::-1], 0.0, 255.0).astype(np.uint8))


def unwarp_images(images: Sequence[np.ndarray], grids: torch.Tensor, scale: float = 255.0) -> list[np.ndarray]:
    """Unwarp BGR uint8 pages with their maps ``[B, 2, h, w]``; returns BGR uint8 pages of the same sizes.

    Equals PaddleX's ``doctr_img[:, :, ::-1]`` (what its ``doc_preprocessor`` passes on).
    """
    if len(images) != grids.shape[0]:
        raise ValueError(f"{len(images)} images but {grids.shape[0]} backward maps")
    out = []
    for img, grid in zip(images, grids, strict=True):
        sampled = unwarp_tensor(page_tensor(img).to(grid.device), grid[None].float())
        out.append(np.ascontiguousarray(doctr_image(sampled[0], scale)[:, :, ::-1]))
    return out
