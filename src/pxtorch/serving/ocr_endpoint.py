"""``POST /ocr``: PaddleX's OCR serving endpoint."""

from __future__ import annotations

from typing import Any

from ..results import BaseResult
from .files import image_to_base64
from .routes import RouteSpec, encode_images, prune_result
from .schemas import OCRInferRequest, OCRInferResult
from .settings import ServerSettings

__all__ = ["OCR_ROUTE"]


def _ocr_item(res: BaseResult, input_image: Any, visualize: bool, settings: ServerSettings) -> dict[str, Any]:
    item: dict[str, Any] = {"prunedResult": prune_result(res.json["res"])}
    if visualize:
        images = encode_images(res, settings)
        item["ocrImage"] = images["ocr_res_img"]
        item["docPreprocessingImage"] = images.get("preprocessed_img")
        item["inputImage"] = image_to_base64(input_image, settings.max_output_img_size)
    return item


OCR_ROUTE = RouteSpec(
    path="/ocr",
    summary="OCR on an image or PDF (PaddleX's OCR serving API)",
    request_model=OCRInferRequest,
    result_model=OCRInferResult,
    results_key="ocrResults",
    make_item=_ocr_item,
)
