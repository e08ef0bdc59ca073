"""pxtorch checkpoints: ``config.json`` + ``model.safetensors`` (+ ``charset.txt``), written and read strictly.

Weights are only ever read from safetensors; nothing is unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
    "WEIGHTS_NAME",
    "CheckpointError",
    "load_checkpoint_dir",
    "load_safetensors_file",
    "load_state_dict_strict",
    "read_checkpoint_dir",
    "read_config",
    "save_pretrained",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CHARSET_NAME = "charset.txt"
FORMAT_VERSION = 1


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


def save_pretrained(model: nn.Module, save_directory: str | Path) -> Path:
    """Write ``config.json`` + ``model.safetensors`` (+ ``charset.txt``) into ``save_directory``.

    The config (and charset) are also stored in the safetensors metadata, so the weights file alone loads.
    Returns the directory.
    """
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


def load_checkpoint_dir(path: Path) -> nn.Module:
    """Load a pxtorch checkpoint directory (config, weights, charset) into the model it describes."""
    config, state, charset = read_checkpoint_dir(path)
    return build_from_config(config, state, charset, str(path / WEIGHTS_NAME))


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
