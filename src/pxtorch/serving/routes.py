"""One PaddleX ``infer`` route, generic over the pipeline: decode the file, batch, predict, answer.

Every document pipeline's endpoint (``/ocr``, ``/document-preprocessing``, ``/seal-recognition``,
``/table-recognition``) takes ``file``/``fileType``/``visualize`` plus the ``predict()`` parameters
in camelCase, and answers ``{<resultsKey>: [item per image or PDF page], dataInfo}``. A
:class:`RouteSpec` says which request model, results key and per-image item each one uses.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ..results import BaseResult
from .batcher import QueueFullError
from .files import RequestError, decode_file, image_to_base64
from .schemas import NoResultResponse, ResultResponse
from .settings import ServerSettings

__all__ = ["RouteSpec", "add_infer_route", "encode_images", "predict_params", "prune_result"]

logger = logging.getLogger(__name__)

#: request fields that are not ``predict()`` parameters
_TRANSPORT_FIELDS = frozenset({"file", "fileType", "visualize"})
_PRUNED_KEYS = ("input_path", "page_index")
# PIL's FreeType fonts are shared by the visualisations; draw one result at a time
_DRAW_LOCK = threading.Lock()

#: ``(result, input image, visualize, settings) -> response item``
ItemBuilder = Callable[[BaseResult, Any, bool, ServerSettings], dict[str, Any]]


@dataclass(frozen=True)
class RouteSpec:
    """A pipeline's endpoint: path, request/result models, the results list key and its items."""

    path: str
    summary: str
    request_model: type[BaseModel]
    result_model: type[BaseModel]
    results_key: str
    make_item: ItemBuilder


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def predict_params(request: BaseModel) -> dict[str, Any]:
    """The request's given (non-null) parameters as ``predict()`` keyword arguments (snake_case)."""
    fields = [f for f in type(request).model_fields if f not in _TRANSPORT_FIELDS]
    return {_snake(f): getattr(request, f) for f in fields if getattr(request, f) is not None}


def prune_result(obj: Any) -> Any:
    """PaddleX's ``prune_result``: the result JSON without ``input_path`` / ``page_index``, recursively."""
    if isinstance(obj, dict):
        return {k: prune_result(v) for k, v in obj.items() if k not in _PRUNED_KEYS}
    if isinstance(obj, list):
        return [prune_result(v) for v in obj]
    return obj


def encode_images(res: BaseResult, settings: ServerSettings) -> dict[str, str]:
    """Every visualisation of ``res`` (its ``img`` dict) as JPEG Base64, downscaled to the server's limit."""
    with _DRAW_LOCK:
        images = res.img
    return {key: image_to_base64(image, settings.max_output_img_size) for key, image in images.items()}


def add_infer_route(app: FastAPI, spec: RouteSpec) -> None:
    """Register ``POST spec.path`` on ``app`` (whose state holds the pipeline, settings and batcher)."""
    settings: ServerSettings = app.state.settings
    request_model, result_model = spec.request_model, spec.result_model

    async def infer(request):  # annotated below
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
            lambda: [spec.make_item(r, im, visualize, settings) for r, im in zip(results, decoded.images, strict=True)]
        )
        body = result_model(**{spec.results_key: items, "dataInfo": decoded.data_info})
        return ResultResponse[result_model](logId=log_id, result=body)

    # the annotations name local classes: give FastAPI the objects, not the postponed strings
    infer.__annotations__ = {"request": request_model, "return": ResultResponse[result_model]}
    app.post(
        spec.path,
        operation_id="infer",
        summary=spec.summary,
        response_model=ResultResponse[result_model],
        response_model_exclude_none=True,
        responses={s: {"model": NoResultResponse} for s in (403, 413, 422, 500, 503, 504)},
    )(infer)
