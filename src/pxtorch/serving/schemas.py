"""Request and response bodies of the serving API, field for field as PaddleX's (camelCase)."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ImageInfo",
    "NoResultResponse",
    "OCRInferRequest",
    "OCRInferResult",
    "OCRResultItem",
    "PDFInfo",
    "PDFPageInfo",
    "ResultResponse",
]

ResultT = TypeVar("ResultT")


class NoResultResponse(BaseModel):
    """The envelope without a result: errors, and ``GET /health``."""

    logId: str
    errorCode: int
    errorMsg: str


class ResultResponse(BaseModel, Generic[ResultT]):
    """The success envelope: ``errorCode`` 0, ``errorMsg`` "Success"."""

    logId: str
    errorCode: int = 0
    errorMsg: str = "Success"
    result: ResultT


class ImageInfo(BaseModel):
    type: Literal["image"] = "image"
    width: int
    height: int


class PDFPageInfo(BaseModel):
    width: int
    height: int


class PDFInfo(BaseModel):
    type: Literal["pdf"] = "pdf"
    numPages: int
    pages: list[PDFPageInfo]


class OCRInferRequest(BaseModel):
    """``POST /ocr``: ``file`` as Base64 (or an allowed URL), ``fileType`` 0 PDF / 1 image, and the
    ``predict()`` parameters in camelCase (``None`` = the pipeline's configured value)."""

    model_config = ConfigDict(extra="ignore")

    file: str = Field(description="Base64 of an image or PDF, or an http(s) URL on the server's allow-list")
    fileType: Literal[0, 1] | None = Field(None, description="0 = PDF, 1 = image; null = inferred from a URL")
    useDocOrientationClassify: bool | None = None
    useDocUnwarping: bool | None = None
    useTextlineOrientation: bool | None = None
    textDetLimitSideLen: int | None = None
    textDetLimitType: str | None = None
    textDetMaxSideLimit: int | None = None
    textDetThresh: float | None = None
    textDetBoxThresh: float | None = None
    textDetUnclipRatio: float | None = None
    textRecScoreThresh: float | None = None
    visualize: bool | None = Field(None, description="return images; null = the server's Serving.visualize")


class OCRResultItem(BaseModel):
    prunedResult: dict[str, Any]
    ocrImage: str | None = None
    docPreprocessingImage: str | None = None
    inputImage: str | None = None


class OCRInferResult(BaseModel):
    ocrResults: list[OCRResultItem]
    dataInfo: ImageInfo | PDFInfo
