"""The FastAPI application: PaddleX's envelope and error handling, limits, ``/health`` and ``/stats``.

:func:`create_app` wires a pipeline to its endpoint (``POST /ocr`` for OCR, ``/seal-recognition``, ...) behind a
:class:`~pxtorch.serving.batcher.DynamicBatcher`. Every response, errors included, is PaddleX's
envelope ``{logId, errorCode, errorMsg[, result]}``; ``errorCode`` is the HTTP status (0 on success).
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._memory import rss_mb
from ..pipelines.base import BasePipeline
from .batcher import DynamicBatcher
from .files import RequestError
from .routes import RouteSpec, add_infer_route
from .settings import ServerSettings

__all__ = ["SERVED_PIPELINES", "create_app", "envelope"]

logger = logging.getLogger(__name__)

#: pipeline name -> endpoint path
SERVED_PIPELINES = {
    "OCR": "/ocr",
    "doc_preprocessor": "/document-preprocessing",
    "seal_recognition": "/seal-recognition",
    "table_recognition": "/table-recognition",
}


def _route(name: str) -> RouteSpec:
    from .doc_endpoints import DOC_PREPROCESSING_ROUTE, SEAL_RECOGNITION_ROUTE, TABLE_RECOGNITION_ROUTE
    from .ocr_endpoint import OCR_ROUTE

    routes = (OCR_ROUTE, DOC_PREPROCESSING_ROUTE, SEAL_RECOGNITION_ROUTE, TABLE_RECOGNITION_ROUTE)
    return {r.path: r for r in routes}[SERVED_PIPELINES[name]]


def envelope(status: int, message: str, log_id: str | None = None) -> JSONResponse:
    """PaddleX's error (or health) envelope with ``errorCode`` = ``status`` (0 for 200)."""
    body = {"logId": log_id or str(uuid.uuid4()), "errorCode": 0 if status == 200 else status, "errorMsg": message}
    return JSONResponse(body, status_code=status)


class BodyLimitMiddleware:
    """413 for request bodies over ``max_bytes``: from ``Content-Length`` at once, else while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"Request body exceeds the server limit of {self.max_bytes} bytes"
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await envelope(413, message)(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, message)
            return msg

        await self.app(scope, limited, send)


def _run_pipeline(pipeline: BasePipeline):  # type: ignore[no-untyped-def]
    # a request's result must not depend on the requests it was batched with
    isolate = {"recognition_grouping": "image"} if hasattr(pipeline, "recognition_grouping") else {}

    def run(images: list[Any], params: dict[str, Any]) -> list[Any]:
        return list(pipeline.predict(images, batch_size=max(1, len(images)), **params, **isolate))

    return run


def create_app(pipeline: BasePipeline, settings: ServerSettings | None = None) -> FastAPI:
    """A FastAPI app serving ``pipeline`` (one of :data:`SERVED_PIPELINES`) with ``settings`` (safe defaults)."""
    settings = settings or ServerSettings()
    name = pipeline.pipeline_name
    if name not in SERVED_PIPELINES:
        raise ValueError(f"serving supports the pipelines {sorted(SERVED_PIPELINES)}, not {name!r}")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.batcher.close()

    app = FastAPI(
        title=f"pxtorch {name} serving",
        description="PaddleX-compatible serving of a pxtorch pipeline (same endpoints and bodies as PaddleX).",
        lifespan=lifespan,
    )
    if settings.torch_threads is not None:
        import torch

        torch.set_num_threads(settings.torch_threads)
    app.state.pipeline = pipeline
    app.state.settings = settings
    app.state.batcher = DynamicBatcher(
        _run_pipeline(pipeline),
        max_batch_size=settings.max_batch_size,
        window_s=settings.batch_window_ms / 1000.0,
        max_queue=settings.max_queue,
        workers=settings.workers or 1,
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = jsonable_encoder(exc.errors(), custom_encoder={bytes: lambda b: b[:64].decode(errors="replace")})
        for err in errors:  # do not echo a whole Base64 file back
            if isinstance(err.get("input"), str) and len(err["input"]) > 200:
                err["input"] = err["input"][:200] + "..."
        return envelope(422, json.dumps(errors, ensure_ascii=False))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return envelope(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestError)
    async def _refused(request: Request, exc: RequestError) -> JSONResponse:
        return envelope(exc.status, exc.message)

    @app.get("/health", summary="Health check", response_model=None)
    async def health() -> JSONResponse:
        return envelope(200, "Healthy")

    @app.get("/stats", summary="Batching counters and server memory (pxtorch addition)")
    async def stats() -> dict[str, Any]:
        batcher: DynamicBatcher = app.state.batcher
        return {**batcher.stats.as_dict(), "queued": batcher.queued, "rss_mb": round(rss_mb(), 1)}

    add_infer_route(app, _route(name))
    return app
