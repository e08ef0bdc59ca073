"""Checkpoint directories, written and read strictly, in two layouts:

* ``"pxtorch"``: ``config.json`` (architecture, build arguments, pretrained metadata) + ``model.safetensors``
  (+ ``charset.txt`` for recognisers);
* ``"paddle-hf"``: PaddlePaddle's official Hugging Face layout (``PaddlePaddle/<Model>_safetensors``):
  transformers' ``config.json`` (``model_type``) + ``model.safetensors`` with transformers' module names
  (+ ``preprocessor_config.json``, whose ``character_list`` is a recogniser's class list). The key maps
  live in :mod:`pxtorch.convert.hf_layout`.

Weights are only ever read from safetensors; nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ._pretrained import PretrainedCfg
from .processing.charset import Charset, parse_dict_text
from .version import __version__

__all__ = [
    "CHARSET_NAME",
    "CONFIG_NAME",
    "PREPROCESSOR_NAME",
    "WEIGHTS_NAME",
    "CheckpointError",
    "is_hf_layout_config",
    "load_checkpoint_dir",
    "load_hf_layout_dir",
    "load_safetensors_file",
    "load_state_dict_strict",
    "read_checkpoint_dir",
    "read_config",
    "save_pretrained",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CHARSET_NAME = "charset.txt"
PREPROCESSOR_NAME = "preprocessor_config.json"  # transformers' image processor (paddle-hf layout)
FORMAT_VERSION = 1
Layout = Literal["pxtorch", "paddle-hf"]


class CheckpointError(ValueError):
    """A checkpoint that is malformed or does not fit its model (message names the file and keys)."""


def model_config(model: nn.Module) -> dict[str, Any]:
    for attr in ("architecture", "model_args", "pretrained_cfg"):
        if not hasattr(model, attr):
            raise TypeError(f"save_pretrained needs a model from pxtorch.create_model (missing '{attr}')")
    charset: Charset | None = getattr(model, "charset", None)
    return {
        "pxtorch_version": __version__,
        "format_version": FORMAT_VERSION,
        "architecture": model.architecture,
        "model_args": dict(model.model_args),
        "pretrained_cfg": model.pretrained_cfg.to_dict(),
        "charset": None
        if charset is None
        else {
            "file": CHARSET_NAME,
            "num_chars": len(charset),
            "use_space_char": charset.use_space_char,
        },
        "source": getattr(model, "weights_source", None),
    }


def save_pretrained(model: nn.Module, save_directory: str | Path, layout: Layout = "pxtorch") -> Path:
    """Write a checkpoint directory for ``model`` and return it.

    Args:
        layout: ``"pxtorch"``: ``config.json`` + ``model.safetensors`` (+ ``charset.txt``); the config (and
            charset) are also stored in the safetensors metadata, so the weights file alone loads.
            ``"paddle-hf"``: PaddlePaddle's official Hugging Face layout (transformers' ``config.json`` and
            key names, ``preprocessor_config.json`` with the recogniser's ``character_list``); loads in
            pxtorch and in transformers (``AutoModelForObjectDetection``/``AutoModelForTextRecognition``).
            Deploy-form models are written as transformers' training form with the same function.

    Raises:
        LayoutError: ``layout="paddle-hf"`` for an architecture that layout cannot express.
    """
    if layout == "paddle-hf":
        return _save_hf_layout(model, Path(save_directory))
    if layout != "pxtorch":
        raise ValueError(f"unknown checkpoint layout {layout!r}; use 'pxtorch' or 'paddle-hf'")
    out = Path(save_directory)
    out.mkdir(parents=True, exist_ok=True)
    config = model_config(model)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": "pt", "pxtorch_config": json.dumps(config)}
    if model.charset is not None:  # the weights file alone stays usable for recognisers too
        metadata["pxtorch_charset"] = json.dumps(model.charset.characters, ensure_ascii=False)
    save_file(state, str(out / WEIGHTS_NAME), metadata=metadata)
    if model.charset is not None:
        model.charset.save(out / CHARSET_NAME)
    (out / CONFIG_NAME).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return out


def load_state_dict_strict(model: nn.Module, state: dict[str, torch.Tensor], context: str) -> None:
    """``load_state_dict(strict=True)`` with a readable error listing every mismatch."""
    target = model.state_dict()
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(target[k].shape)}"
        for k in target
        if k in state and tuple(state[k].shape) != tuple(target[k].shape)
    ]
    if missing or unexpected or shapes:

        def part(title: str, items: list[str]) -> str:
            more = f" (+{len(items) - 8} more)" if len(items) > 8 else ""
            return f"\n  {title} ({len(items)}): {', '.join(items[:8])}{more}" if items else ""

        raise CheckpointError(
            f"{context} does not fit {getattr(model, 'architecture', type(model).__name__)}:"
            + part("missing keys", missing)
            + part("unexpected keys", unexpected)
            + part("shape mismatches", shapes)
        )
    model.load_state_dict(state, strict=True)


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot read safetensors weights ({e})") from e


def read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: unreadable config ({e})") from e
    for key in ("architecture", "model_args", "pretrained_cfg"):
        if key not in config:
            raise CheckpointError(f"{path}: not a pxtorch config (no '{key}')")
    if config.get("format_version", 1) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: written by a newer pxtorch ({config.get('pxtorch_version')}); please upgrade")
    return config


def build_from_config(
    config: dict[str, Any], state: dict[str, torch.Tensor], charset: Charset | None, context: str
) -> nn.Module:
    """Rebuild the model a config describes and load ``state`` strictly (``context`` names the file in errors)."""
    from ._factory import create_model

    model = create_model(config["architecture"], pretrained=False, **config["model_args"])
    model.pretrained_cfg = PretrainedCfg.from_dict(config["pretrained_cfg"])
    load_state_dict_strict(model, state, context)
    model.charset = charset
    model.weights_source = config.get("source")
    return model.eval()


def read_checkpoint_dir(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor], Charset | None]:
    """``(config, state dict, charset)`` of a pxtorch checkpoint directory, each part checked."""
    config = read_config(path / CONFIG_NAME)
    weights = path / WEIGHTS_NAME
    if not weights.is_file():
        raise CheckpointError(f"{path}: {WEIGHTS_NAME} is missing")
    charset = None
    if config.get("charset"):
        charset_path = path / config["charset"].get("file", CHARSET_NAME)
        if not charset_path.is_file():
            raise CheckpointError(f"{path}: the config names {charset_path.name}, which is missing")
        charset = _checked_charset(parse_dict_text(charset_path.read_text(encoding="utf-8")), config, charset_path)
    return config, read_safetensors(weights), charset


def load_checkpoint_dir(path: Path, model_name: str | None = None) -> nn.Module:
    """Load a checkpoint directory in either layout into the model it describes.

    ``model_name`` picks the pxtorch architecture for a paddle-hf checkpoint whose ``model_type`` serves
    several (``"PP-OCRv4_mobile_det"`` for a ``pp_ocrv5_mobile_det`` checkpoint); pxtorch configs name theirs.
    """
    raw = _read_json(path / CONFIG_NAME)
    if is_hf_layout_config(raw):
        return load_hf_layout_dir(path, model_name)
    config, state, charset = read_checkpoint_dir(path)
    return build_from_config(config, state, charset, str(path / WEIGHTS_NAME))


# -- PaddlePaddle's official Hugging Face layout ---------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: unreadable config ({e})") from e
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: unreadable config (not a JSON object)")
    return data


def is_hf_layout_config(config: dict[str, Any]) -> bool:
    """True for a transformers ``config.json`` (a ``model_type``, none of pxtorch's keys)."""
    return "model_type" in config and not any(k in config for k in ("architecture", "model_args", "pretrained_cfg"))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_hf_layout_dir(path: Path, model_name: str | None = None) -> nn.Module:
    """Load a directory in PaddlePaddle's Hugging Face layout (``config.json`` with ``model_type``).

    The layout registered for the ``model_type`` maps the weights onto pxtorch's training form (for the
    PP-LCNetV3 models: every rep branch kept; :func:`pxtorch.reparameterize_model` fuses them). Recognisers
    take their class list from ``preprocessor_config.json`` (``character_list``), else from the registry's
    charset; it must have as many classes as the head.

    Raises:
        LayoutError: unknown ``model_type`` (with close matches), a config pxtorch cannot build, or weights
            with missing/unexpected/misshapen keys (named).
        CheckpointError: unreadable files, or a class list that does not fit the head.
    """
    from ._factory import create_model
    from ._registry import resolve_model_name
    from .convert.hf_layout import LayoutError, get_layout

    config = _read_json(path / CONFIG_NAME)
    layout = get_layout(config["model_type"])
    if model_name is not None:
        arch = resolve_model_name(model_name)
        if arch not in layout.architectures:
            raise LayoutError(
                f"{path}: a '{config['model_type']}' checkpoint holds {', '.join(layout.architectures)}, not {arch}"
            )
        config = {**config, "pxtorch_architecture": arch}
    weights = path / WEIGHTS_NAME
    if not weights.is_file():
        raise CheckpointError(f"{path}: {WEIGHTS_NAME} is missing")
    arch, kwargs, state = layout.to_pxtorch(read_safetensors(weights), config)
    model = create_model(arch, pretrained=False, **kwargs)
    load_state_dict_strict(model, state, str(weights))
    model.charset = _hf_charset(path, model)
    model.weights_source = {
        "format": "paddle-hf",
        "model_type": config["model_type"],
        "file": str(weights),
        "sha256": _sha256(weights),
    }
    return model.eval()


def _num_classes(model: nn.Module) -> int:
    return int(model.model_args.get("num_classes", model.pretrained_cfg.num_classes))


def _hf_charset(path: Path, model: nn.Module) -> Charset | None:
    """A recogniser's charset: ``character_list`` of ``preprocessor_config.json``, else the registry's."""
    cfg = model.pretrained_cfg
    if cfg.task != "text_recognition":
        return None
    num_classes = _num_classes(model)
    processor = path / PREPROCESSOR_NAME
    labels = _read_json(processor).get("character_list") if processor.is_file() else None
    if labels:
        if not isinstance(labels, list) or not all(isinstance(c, str) for c in labels):
            raise CheckpointError(f"{processor}: character_list must be a list of strings")
        space = cfg.use_space_char and labels[-1] == " "
        charset = Charset(labels[1:-1] if space else labels[1:], space)
        where = f"{processor} (character_list)"
    elif cfg.charset is not None:
        from .convert import SourceUnavailable, read_charset

        try:
            charset = Charset(read_charset(cfg.charset), cfg.use_space_char)
        except SourceUnavailable as e:
            raise CheckpointError(
                f"{path}: no character_list in {PREPROCESSOR_NAME}, and the registry's charset is unavailable "
                f"({e}). Install {cfg.charset.package}=={cfg.charset.version} (--no-deps) or add the "
                f"character_list."
            ) from e
        where = f"the registry charset of {model.architecture} ({cfg.charset.path})"
    else:
        raise CheckpointError(f"{path}: a recogniser without a character_list in {PREPROCESSOR_NAME}")
    if charset.num_classes != num_classes:
        raise CheckpointError(f"{path}: {where} gives {charset.num_classes} classes but the head has {num_classes}")
    return charset


def _preprocessor_config(model: nn.Module) -> dict[str, Any] | None:
    """transformers' image-processor config for ``model`` (``character_list`` for recognisers)."""
    cfg = model.pretrained_cfg
    p = cfg.preprocess
    if cfg.task == "text_recognition":
        if model.charset is None:
            raise CheckpointError(f"{model.architecture}: a recogniser needs its charset to be saved")
        _, height, width = p.input_size
        return {
            "image_processor_type": "PPOCRV5ServerRecImageProcessor",
            "do_resize": True,
            "size": {"height": height, "width": width},
            "do_rescale": True,
            "rescale_factor": p.scale,
            "do_normalize": True,
            "image_mean": list(p.mean),
            "image_std": list(p.std),
            "do_pad": True,
            "pad_size": {"height": height, "width": width},
            "max_image_width": p.max_width,
            "character_list": list(model.charset.labels),
        }
    if cfg.task == "text_detection":  # transformers normalises RGB with reversed stats, then flips to BGR
        return {
            "image_processor_type": "PPOCRV5ServerDetImageProcessor",
            "do_resize": True,
            "do_rescale": True,
            "rescale_factor": p.scale,
            "do_normalize": True,
            "image_mean": list(reversed(p.mean)),
            "image_std": list(reversed(p.std)),
            "limit_side_len": p.limit_side_len,
            "limit_type": p.limit_type,
            "max_side_limit": p.max_side_limit,
        }
    return None


def _save_hf_layout(model: nn.Module, out: Path) -> Path:
    from .convert.hf_layout import layout_for_architecture

    if not hasattr(model, "architecture"):
        raise TypeError("save_pretrained needs a model from pxtorch.create_model (missing 'architecture')")
    config, state = layout_for_architecture(model.architecture).from_pxtorch(model)
    processor = _preprocessor_config(model)
    out.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out / WEIGHTS_NAME), metadata={"format": "pt"})
    (out / CONFIG_NAME).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if processor is not None:
        text = json.dumps(processor, indent=2, ensure_ascii=False) + "\n"
        (out / PREPROCESSOR_NAME).write_text(text, encoding="utf-8")
    return out


def _checked_charset(characters: list[str], config: dict[str, Any], where: Path) -> Charset:
    info = config["charset"]
    if len(characters) != info.get("num_chars", len(characters)):
        raise CheckpointError(f"{where}: {len(characters)} charset entries, the config says {info['num_chars']}")
    return Charset(characters, info.get("use_space_char", True))


def load_safetensors_file(path: Path, model_name: str | None) -> nn.Module:
    """Load a lone ``.safetensors`` file: its own pxtorch metadata, or ``model_name`` for a plain state dict."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path}: cannot read safetensors weights ({e})") from e
    state = read_safetensors(path)
    if "pxtorch_config" in meta:
        config = json.loads(meta["pxtorch_config"])
        charset = None
        if config.get("charset"):
            if "pxtorch_charset" not in meta:
                raise CheckpointError(f"{path}: a recogniser without its charset; load its directory instead")
            charset = _checked_charset(json.loads(meta["pxtorch_charset"]), config, path)
        return build_from_config(config, state, charset, str(path))
    if model_name is None:
        raise CheckpointError(f"{path}: no pxtorch config in the file; pass model_name= to say which architecture")
    from ._factory import create_model

    model = create_model(model_name, pretrained=False, deploy=any(".reparam_conv." in k for k in state))
    load_state_dict_strict(model, state, str(path))
    return model.eval()
