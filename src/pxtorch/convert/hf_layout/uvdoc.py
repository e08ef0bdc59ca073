"""transformers' ``uvdoc`` (``UVDocModel``, ``PaddlePaddle/UVDoc_safetensors``) <-> pxtorch ``uvdoc``.

pxtorch's UVDoc keeps PaddleX's dygraph module names, which are also transformers' (``backbone.resnet.
resnet_head.0.convolution.weight``, ``head.out_point_positions2D.conv_down.activation.weight`` ...), so
the key map is the identity. Reading also accepts a ``model.`` prefix and Paddle's own parameter names
(``_mean``/``_variance`` for BN statistics, ``_weight`` for the PReLU slope).

transformers' default ``UVDocConfig()`` builds a model that crashes in ``forward``: its backbone returns
only ``out_features=["stage6"]`` (one 128-channel map) while the head's 1x1 ``bridge_connector`` expects
the six bridge maps concatenated (768 channels). A working config needs
``backbone_config={"model_type": "uvdoc_backbone", "out_features": ["stage1", ..., "stage6"]}``
(a dict without ``model_type`` raises ``KeyError: None``). :func:`from_pxtorch` writes that.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ...models.uvdoc import RESNET_CONFIGS, RESNET_HEAD, STAGE_CONFIGS, UPSAMPLE_SIZE
from . import HFLayout, LayoutError, StateDict, register_layout

__all__ = ["UVDOC_LAYOUT"]

_ARCH = "uvdoc"
_DEFAULTS: dict[str, Any] = {  # pxtorch argument -> default (= UVDocConfig / UVDocBackboneConfig defaults)
    "resnet_head": RESNET_HEAD,
    "resnet_configs": RESNET_CONFIGS,
    "stage_configs": STAGE_CONFIGS,
    "kernel_size": 5,
    "bridge_connector": (128, 128),
    "out_point_positions2D": ((128, 32), (32, 2)),
    "padding_mode": "reflect",
}
_BACKBONE_KEYS = ("resnet_head", "resnet_configs", "stage_configs")
_PADDLE_SUFFIXES = (
    (".activation._weight", ".activation.weight"),
    ("._mean", ".running_mean"),
    ("._variance", ".running_var"),
)


def _lists(obj: Any) -> Any:
    """Tuples -> lists, recursively (``config.json`` form)."""
    if isinstance(obj, (list, tuple)):
        return [_lists(v) for v in obj]
    return obj


def _hf_key_to_pxtorch(key: str) -> str:
    if key.startswith("model."):
        key = key[len("model.") :]
    for paddle, torch_name in _PADDLE_SUFFIXES:
        if key.endswith(paddle):
            key = key[: -len(paddle)] + torch_name
    return key


def to_pxtorch(state: StateDict, config: dict[str, Any]) -> tuple[str, dict[str, Any], StateDict]:
    """Official checkpoint -> (``"uvdoc"``, non-default build kwargs, pxtorch state)."""
    arch = config.get("pxtorch_architecture", _ARCH)
    if arch != _ARCH:
        raise LayoutError(f"a 'uvdoc' checkpoint holds {_ARCH}, not {arch}")
    act = config.get("hidden_act", "prelu")
    if act != "prelu":
        raise LayoutError(f"UVDoc config hidden_act={act!r}: pxtorch builds the PReLU head PaddleX uses")
    backbone = config.get("backbone_config") or {}
    given = {k: backbone[k] for k in _BACKBONE_KEYS if k in backbone}
    given.update({k: config[k] for k in ("bridge_connector", "out_point_positions2D", "padding_mode") if k in config})
    if "kernel_size" in backbone and backbone["kernel_size"] != config.get("kernel_size", backbone["kernel_size"]):
        raise LayoutError("UVDoc config: backbone and head kernel_size differ; pxtorch uses one for both")
    if "kernel_size" in config or "kernel_size" in backbone:
        given["kernel_size"] = config.get("kernel_size", backbone.get("kernel_size"))
    kwargs = {k: v for k, v in given.items() if _lists(v) != _lists(_DEFAULTS[k])}
    if "upsample_size" in config and list(config["upsample_size"]) != list(UPSAMPLE_SIZE):
        kwargs["upsample_size"] = tuple(config["upsample_size"])
    out = {_hf_key_to_pxtorch(k): v for k, v in state.items()}
    if len(out) != len(state):
        raise LayoutError("UVDoc checkpoint: two keys map onto the same pxtorch name")
    return _ARCH, kwargs, out


def from_pxtorch(model: nn.Module) -> tuple[dict[str, Any], StateDict]:
    """pxtorch ``uvdoc`` -> (transformers ``config.json`` dict, state dict) that ``UVDocModel`` loads strictly."""
    if getattr(model, "architecture", None) != _ARCH:
        raise LayoutError(f"the 'uvdoc' layout writes {_ARCH}, not {getattr(model, 'architecture', '?')}")
    args = {**_DEFAULTS, **{k: v for k, v in model.model_args.items() if k in _DEFAULTS}}
    num_branches = len(args["stage_configs"])
    config: dict[str, Any] = {
        "model_type": "uvdoc",
        "architectures": ["UVDocModel"],
        "backbone_config": {
            "model_type": "uvdoc_backbone",
            **{k: _lists(args[k]) for k in _BACKBONE_KEYS},
            "kernel_size": args["kernel_size"],
            "out_features": [f"stage{i}" for i in range(1, num_branches + 1)],
        },
        "hidden_act": "prelu",
        "padding_mode": args["padding_mode"],
        "kernel_size": args["kernel_size"],
        "bridge_connector": _lists(args["bridge_connector"]),
        "out_point_positions2D": _lists(args["out_point_positions2D"]),
    }
    if tuple(model.upsample_size) != UPSAMPLE_SIZE:
        config["upsample_size"] = list(model.upsample_size)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    return config, state


UVDOC_LAYOUT = register_layout(
    HFLayout(model_type="uvdoc", architectures=(_ARCH,), to_pxtorch=to_pxtorch, from_pxtorch=from_pxtorch)
)
