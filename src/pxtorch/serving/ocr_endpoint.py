"""``POST /ocr``: PaddleX's OCR serving endpoint on the dynamic batcher."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import uuid
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from ..results import BaseResult
from .batcher import QueueFullError
from .files import RequestError, decode_file, image_to_base64
from .schemas import NoResultResponse, OCRInferRequest, OCRInferResult, ResultResponse
from .settings import ServerSettings

__all__ = ["add_ocr_route", "predict_params", "prune_result"]

logger = logging.getLogger(__name__)

_PARAM_FIELDS = (
    "useDocOrientationClassify",
    "useDocUnwarping",
    "useTextlineOrientation",
    "textDetLimitSideLen",
    "textDetLimitType",
    "textDetMaxSideLimit",
    "textDetThresh",
    "textDetBoxThresh",
    "textDetUnclipRatio",
    "textRecScoreThresh",
)
_PRUNED_KEYS = ("input_path", "page_index")
# PIL's FreeType fonts are shared by the visualisation; draw one result at a time
_DRAW_LOCK = threading.Lock()


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def predict_params(request: OCRInferRequest) -> dict[str, Any]:
    """The request's given (non-null) parameters as ``predict()`` keyword arguments."""
    return {_snake(f): getattr(request, f) for f in _PARAM_FIELDS if getattr(request, f) is not None}


def prune_result(obj: Any) -> Any:
    """PaddleX's ``prune_result``: the result JSON without ``input_path`` / ``page_index``, recursively."""
    if isinstance(obj, dict):
        return {k: prune_result(v) for k, v in obj.items() if k not in _PRUNED_KEYS}
    if isinstance(obj, list):
        return [prune_result(v) for v in obj]
    return obj


def _result_item(res: BaseResult, input_image: Any, visualize: bool, settings: ServerSettings) -> dict[str, Any]:
    item: dict[str, Any] = {"prunedResult": prune_result(res.json["res"])}
    if visualize:
        size = settings.max_output_img_size
        with _DRAW_LOCK:
            images = res.img
        item["ocrImage"] = image_to_base64(images["ocr_res_img"], size)
        if "preprocessed_img" in images:
            item["docPreprocessingImage"] = image_to_base64(images["preprocessed_img"], size)
        item["inputImage"] = image_to_base64(input_image, size)
    return item


def add_ocr_route(app: FastAPI) -> None:
    """Register ``POST /ocr`` on ``app`` (whose state holds the pipeline, settings and batcher)."""
    settings: ServerSettings = app.state.settings

    @app.post(
        "/ocr",
        operation_id="infer",
        summary="OCR on an image or PDF (PaddleX's OCR serving API)",
        response_model=ResultResponse[OCRInferResult],
        response_model_exclude_none=True,
        responses={s: {"model": NoResultResponse} for s in (403, 413, 422, 500, 503, 504)},
    )
    async def infer(request: OCRInferRequest) -> ResultResponse[OCRInferResult]:
        log_id = str(uuid.uuid4())
        start = time.monotonic()
        params = predict_params(request)
        pipeline = app.state.pipeline
        try:
            pipeline._resolve_params(**params)  # bad parameter values are the client's error
        except (ValueError, TypeError) as e:
            raise RequestError(422, str(e)) from None
        decoded = await run_in_threadpool(decode_file, request.file, request.fileType, settings)
        try:
            future = app.state.batcher.submit(decoded.images, params)
        except QueueFullError as e:
            raise RequestError(503, str(e)) from None
        left = settings.request_timeout_s - (time.monotonic() - start)
        try:
            results = await asyncio.wait_for(asyncio.wrap_future(future), timeout=max(left, 0.001))
        except TimeoutError:
            future.cancel()
            raise RequestError(504, f"request timed out after {settings.request_timeout_s:g} s") from None
        except Exception as e:  # the pipeline failed on this request's images
            logger.exception("%s: pipeline error", log_id)
            raise RequestError(500, f"{type(e).__name__}: {e}") from None
        visualize = settings.visualize if request.visualize is None else request.visualize
        items = await run_in_threadpool(
            lambda: [_result_item(r, im, visualize, settings) for r, im in zip(results, decoded.images, strict=True)]
        )
        return ResultResponse[OCRInferResult](
            logId=log_id, result=OCRInferResult(ocrResults=items, dataInfo=decoded.data_info)
        )
