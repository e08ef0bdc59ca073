"""Request and response bodies of the serving API, field for field as PaddleX's (camelCase)."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "DocPreprocessingInferRequest",
    "DocPreprocessingInferResult",
    "DocPreprocessingResultItem",
    "ImageInfo",
    "InferRequestBase",
    "NoResultResponse",
    "OCRInferRequest",
    "OCRInferResult",
    "OCRResultItem",
    "OutputImagesItem",
    "PDFInfo",
    "PDFPageInfo",
    "ResultResponse",
    "SealRecInferRequest",
    "SealRecInferResult",
    "TableRecInferRequest",
    "TableRecInferResult",
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


class InferRequestBase(BaseModel):
    """What every document endpoint takes: ``file`` as Base64 (or an allowed URL), ``fileType``
    0 PDF / 1 image, ``visualize``; subclasses add the ``predict()`` parameters in camelCase
    (``None`` = the pipeline's configured value)."""

    model_config = ConfigDict(extra="ignore")

    file: str = Field(description="Base64 of an image or PDF, or an http(s) URL on the server's allow-list")
    fileType: Literal[0, 1] | None = Field(None, description="0 = PDF, 1 = image; null = inferred from a URL")
    visualize: bool | None = Field(None, description="return images; null = the server's Serving.visualize")


class _DocPreprocessingParams(BaseModel):
    useDocOrientationClassify: bool | None = None
    useDocUnwarping: bool | None = None


class _TextDetParams(BaseModel):
    textDetLimitSideLen: int | None = None
    textDetLimitType: str | None = None
    textDetMaxSideLimit: int | None = None
    textDetThresh: float | None = None
    textDetBoxThresh: float | None = None
    textDetUnclipRatio: float | None = None
    textRecScoreThresh: float | None = None


class OCRInferRequest(InferRequestBase, _DocPreprocessingParams, _TextDetParams):
    """``POST /ocr``."""

    useTextlineOrientation: bool | None = None


class DocPreprocessingInferRequest(InferRequestBase, _DocPreprocessingParams):
    """``POST /document-preprocessing``."""


class SealRecInferRequest(InferRequestBase, _DocPreprocessingParams):
    """``POST /seal-recognition``."""

    useLayoutDetection: bool | None = None
    layoutThreshold: float | dict[int, float] | None = None
    layoutNms: bool | None = None
    layoutUnclipRatio: float | tuple[float, float] | dict[int, tuple[float, float]] | None = None
    layoutMergeBboxesMode: str | dict[int, str] | None = None
    sealDetLimitSideLen: int | None = None
    sealDetLimitType: str | None = None
    sealDetThresh: float | None = None
    sealDetBoxThresh: float | None = None
    sealDetUnclipRatio: float | None = None
    sealRecScoreThresh: float | None = None


class TableRecInferRequest(InferRequestBase, _DocPreprocessingParams, _TextDetParams):
    """``POST /table-recognition`` (v1 pipeline: ``useOcrResultsWithTableCells`` is a v2 option and is refused)."""

    useLayoutDetection: bool | None = None
    useOcrModel: bool | None = None
    useOcrResultsWithTableCells: bool | None = None


class OCRResultItem(BaseModel):
    prunedResult: dict[str, Any]
    ocrImage: str | None = None
    docPreprocessingImage: str | None = None
    inputImage: str | None = None


class OCRInferResult(BaseModel):
    ocrResults: list[OCRResultItem]
    dataInfo: ImageInfo | PDFInfo


class DocPreprocessingResultItem(BaseModel):
    outputImage: str
    prunedResult: dict[str, Any]
    docPreprocessingImage: str | None = None
    inputImage: str | None = None


class DocPreprocessingInferResult(BaseModel):
    docPreprocessingResults: list[DocPreprocessingResultItem]
    dataInfo: ImageInfo | PDFInfo


class OutputImagesItem(BaseModel):
    """A result with every visualisation by name (PaddleX 3.x seal and table endpoints)."""

    prunedResult: dict[str, Any]
    outputImages: dict[str, str] | None = None
    inputImage: str | None = None


class SealRecInferResult(BaseModel):
    sealRecResults: list[OutputImagesItem]
    dataInfo: ImageInfo | PDFInfo


class TableRecInferResult(BaseModel):
    tableRecResults: list[OutputImagesItem]
    dataInfo: ImageInfo | PDFInfo
