"""The document pipelines' endpoints: ``/document-preprocessing``, ``/seal-recognition``, ``/table-recognition``.

Bodies as PaddleX 3.x: the preprocessing endpoint returns the corrected page as ``outputImage`` (always)
and its visualisation as ``docPreprocessingImage``; the seal and table endpoints return every
visualisation of the result by name in ``outputImages`` (e.g. ``seal_res_region1``, ``table_cell_img``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..results import BaseResult
from .files import image_to_base64
from .routes import RouteSpec, encode_images, prune_result
from .schemas import (
    DocPreprocessingInferRequest,
    DocPreprocessingInferResult,
    SealRecInferRequest,
    SealRecInferResult,
    TableRecInferRequest,
    TableRecInferResult,
)
from .settings import ServerSettings

__all__ = ["DOC_PREPROCESSING_ROUTE", "SEAL_RECOGNITION_ROUTE", "TABLE_RECOGNITION_ROUTE"]


def _doc_item(res: BaseResult, input_image: Any, visualize: bool, settings: ServerSettings) -> dict[str, Any]:
    item: dict[str, Any] = {
        "outputImage": image_to_base64(np.asarray(res["output_img"]), settings.max_output_img_size),  # BGR page
        "prunedResult": prune_result(res.json["res"]),
    }
    if visualize:
        item["docPreprocessingImage"] = encode_images(res, settings).get("preprocessed_img")
        item["inputImage"] = image_to_base64(input_image, settings.max_output_img_size)
    return item


def _images_item(res: BaseResult, input_image: Any, visualize: bool, settings: ServerSettings) -> dict[str, Any]:
    item: dict[str, Any] = {"prunedResult": prune_result(res.json["res"])}
    if visualize:
        item["outputImages"] = encode_images(res, settings)
        item["inputImage"] = image_to_base64(input_image, settings.max_output_img_size)
    return item


DOC_PREPROCESSING_ROUTE = RouteSpec(
    path="/document-preprocessing",
    summary="Document orientation correction and unwarping (PaddleX's doc_preprocessor serving API)",
    request_model=DocPreprocessingInferRequest,
    result_model=DocPreprocessingInferResult,
    results_key="docPreprocessingResults",
    make_item=_doc_item,
)
SEAL_RECOGNITION_ROUTE = RouteSpec(
    path="/seal-recognition",
    summary="Seal text recognition (PaddleX's seal_recognition serving API)",
    request_model=SealRecInferRequest,
    result_model=SealRecInferResult,
    results_key="sealRecResults",
    make_item=_images_item,
)
TABLE_RECOGNITION_ROUTE = RouteSpec(
    path="/table-recognition",
    summary="Table recognition to HTML (PaddleX's table_recognition serving API)",
    request_model=TableRecInferRequest,
    result_model=TableRecInferResult,
    results_key="tableRecResults",
    make_item=_images_item,
)
