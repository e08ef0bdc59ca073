"""UVDoc post-processing (``pxtorch.processing.unwarp``) and the ``image_unwarping`` pipeline.

Post-processing is checked against warps whose answer is known independently of any weights (the
identity map returns the page, a mirrored map the mirrored page, a shifted map the shifted page with
zeros past the edge) and against transformers' ``UVDocImageProcessor.post_process_document_rectification``
(PaddleX's ``DocTrPostProcess`` arithmetic) on a random map. The pipeline runs a random-init UVDoc
checkpoint from ``model_dir``; its pages must equal the post-processing applied to the model's raw output.
No official weights exist offline: a request for UVDoc must say so and how to provide them.
"""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import UVDocImageProcessor

import pxtorch
from pxtorch.hub import WeightsNotFoundError
from pxtorch.pipelines.image_unwarping import ImageUnwarpingPipeline, ImageUnwarpingResult
from pxtorch.processing.unwarp import doctr_image, page_tensor, unwarp_images, unwarp_tensor


def _page(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _linear_grid(h: int = 45, w: int = 31, flip_x: bool = False, shift_x: float = 0.0) -> torch.Tensor:
    """A coarse ``[1, 2, h, w]`` map: x and y linear from -1 to 1 (optionally mirrored / shifted in x)."""
    xs = torch.linspace(-1.0, 1.0, w, dtype=torch.float64)
    ys = torch.linspace(-1.0, 1.0, h, dtype=torch.float64)
    gx = (-xs if flip_x else xs) + shift_x
    grid = torch.stack([gx[None, :].expand(h, w), ys[:, None].expand(h, w)])
    return grid[None].float()


def test_identity_map_returns_the_page():
    bgr = _page(37, 53, 0)
    page = page_tensor(bgr)
    out = unwarp_tensor(page, _linear_grid())
    assert out.shape == page.shape and (out - page).abs().max().item() <= 1e-5
    (back,) = unwarp_images([bgr], _linear_grid())
    assert back.shape == bgr.shape and back.dtype == np.uint8
    # uint8 truncation of v/255*255 may land one below v; BGR order is kept
    delta = bgr.astype(np.int16) - back.astype(np.int16)
    assert delta.min() >= 0 and delta.max() <= 1
    # PaddleX's doctr_img is the same page with its channels reversed
    assert np.array_equal(doctr_image(out[0]), back[:, :, ::-1])


def test_mirrored_and_shifted_maps():
    bgr = _page(29, 41, 1)
    page = page_tensor(bgr)
    mirrored = unwarp_tensor(page, _linear_grid(flip_x=True))
    assert (mirrored - page.flip(-1)).abs().max().item() <= 1e-5
    k = 3  # sample k pixels to the right: the last k columns fall outside the page and read zeros
    shifted = unwarp_tensor(page, _linear_grid(shift_x=2.0 * k / (41 - 1)))
    assert (shifted[..., :-k] - page[..., k:]).abs().max().item() <= 1e-5
    assert shifted[..., -k:].abs().max().item() <= 1e-5


def test_postprocess_matches_transformers():
    """A random map (partly outside [-1, 1]) on a non-square page: byte-identical to transformers'."""
    bgr = _page(61, 47, 2)
    grid = torch.rand((1, 2, 45, 31), generator=torch.Generator().manual_seed(3)) * 2.4 - 1.2
    processor = UVDocImageProcessor()
    inputs = processor(images=Image.fromarray(bgr[:, :, ::-1].copy()), return_tensors="pt")
    ref = processor.post_process_document_rectification(grid, inputs["original_images"])[0]["images"].numpy()
    got = doctr_image(unwarp_tensor(page_tensor(bgr), grid)[0])
    assert got.dtype == np.uint8 and np.array_equal(got, ref)
    (bgr_out,) = unwarp_images([bgr], grid)
    assert np.array_equal(bgr_out, ref[:, :, ::-1])


def test_unwarp_rejects_bad_maps():
    with pytest.raises(ValueError, match="backward map"):
        unwarp_tensor(page_tensor(_page(8, 8, 0)), torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="2 backward maps"):
        unwarp_images([_page(8, 8, 0)], torch.zeros(2, 2, 4, 4))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = pxtorch.create_model("UVDoc").eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # BN statistics off their init values; a map of a useful size
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + 0.5 * torch.rand(m.running_var.shape, generator=g))
    path = tmp_path_factory.mktemp("uvdoc_ckpt")
    pxtorch.save_pretrained(model, path)
    return path, model


def test_pipeline_equals_model_plus_postprocess(checkpoint):
    path, model = checkpoint
    pipe = ImageUnwarpingPipeline(model_dir=path, batch_size=2)
    pages = [_page(120, 90, 5), _page(75, 140, 6)]
    results = pipe(pages)
    assert [type(r) for r in results] == [ImageUnwarpingResult] * 2
    # reference: the model on each full page (it resizes inside) and processing.unwarp on its raw output
    with torch.no_grad():
        want = [unwarp_images([p], model(page_tensor(p)))[0] for p in pages]
    got_bgr = pipe.unwarp(pages)
    for res, page, ref, bgr in zip(results, pages, want, got_bgr, strict=True):
        assert set(res) == {"input_path", "page_index", "doctr_img"}
        assert res["input_path"] is None and res["page_index"] is None
        img = res["doctr_img"]
        assert img.shape == page.shape and img.dtype == np.uint8
        assert bgr.shape == page.shape and bgr.dtype == np.uint8
        assert np.array_equal(bgr, img[:, :, ::-1])  # unwarp() is doctr_img in BGR order
        delta = np.abs(bgr.astype(np.int16) - ref.astype(np.int16))
        assert delta.max() <= 1 and (delta > 0).mean() < 1e-2  # batching vs one page: float32 rounding only
    assert set(results[0].img) == {"doctr_img"} and results[0].img["doctr_img"].size == (90, 120)
    assert "doctr_img" in results[0].json["res"]


@pytest.fixture()
def offline_hf(tmp_path, monkeypatch):
    """An empty Hugging Face cache and pxtorch cache, offline mode, and no network."""
    import huggingface_hub.constants as hf_constants

    cache = tmp_path / "hf_home" / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(cache.parent))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PXTORCH_HOME", str(tmp_path / "pxtorch"))
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)

    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)


def test_offline_request_names_the_missing_weights(offline_hf):
    with pytest.raises(WeightsNotFoundError) as info:
        ImageUnwarpingPipeline()
    msg = str(info.value)
    assert "'UVDoc'" in msg and "cannot be loaded offline" in msg
    assert "PaddlePaddle/UVDoc_safetensors" in msg and "model_dir=" in msg and "HF_HUB_OFFLINE" in msg
