"""Inference engines for pipeline models (PaddleOCR 3.5's ``engine`` / ``engine_config``).

- ``"eager"`` (default): the PyTorch module as loaded. ``engine_config``: ``dtype``, ``num_threads``,
  ``channels_last``. With no (or only default) settings the model itself is returned: zero overhead.
- ``"compile"``: ``torch.compile`` (inductor) of the model, with the activation (softmax) and the dtype
  casts inside the graph. ``engine_config``: the eager keys plus ``mode`` (``"default"``,
  ``"reduce-overhead"`` = CUDA graphs on CUDA, ``"max-autotune"``, ``"max-autotune-no-cudagraphs"``),
  ``dynamic`` (``None``, the default: the pipeline's varying dims are marked dynamic: batch/height/width
  for detectors, batch/width for recognisers, batch for classifiers; ``True``: every dim symbolic;
  ``False``: one compilation per input shape), ``fullgraph`` (bool), ``backend`` (``"inductor"``;
  ``"aot_eager"``/``"eager"`` for debugging) and ``recompile_limit`` (default 16: compilations per model
  before dynamo runs further new shapes eagerly, with a warning). Compilation happens on the first call:
  on a CPU about a minute per model cold, 10-20 s when inductor's on-disk cache has the graphs. Dynamo
  still specialises batch size 1 and a few size thresholds of the convolution kernels, so the detector
  compiles for a handful of image-size ranges (7 graphs over 20 scene photos) and the recogniser and
  classifier twice (batch 1 and larger batches). The graph is traced in grad mode (no parameter requires
  grad) so that the plain modules run instead of pxtorch's inference fast paths, whose Python-side
  weight-folding cache dynamo cannot trace; inductor fuses those ops itself. On the CPU inductor needs a
  C++ compiler (``g++``/``$CXX``); a failed compilation raises one :class:`EngineError` that names the
  engine, the model and the cause.
- ``"onnxruntime"``: the model is exported with :func:`pxtorch.export.export_onnx` (verified against eager)
  into a temporary directory and run by onnxruntime on the CPU. ``engine_config``: ``num_threads``,
  ``dtype`` (``"float32"`` only).
- ``"auto"``: the first available candidate for the model and device among the measured ones in
  ``pxtorch/engine_priors.json`` (written by ``scripts/benchmark.py --write-priors``); candidates that
  cannot run here (onnxruntime not installed, no C++ compiler / triton for compile, float16 or
  bfloat16 without CUDA support) are skipped; ``"eager"`` when nothing applies. ``engine_config``:
  ``num_threads`` only (passed to the chosen engine). The choice is logged (``logging.INFO``).

``engine_config`` keys shared by the torch engines:

- ``dtype``: ``"float32"`` (default), ``"bfloat16"`` (CPU and CUDA), ``"float16"`` (CUDA only). The
  weights are cast, inputs are cast on the way in and outputs come back as float32 probabilities.
  Accuracy (19 real scenes, 432 text lines, ``scripts/precision_check.py --input-rounding``): the
  PP-OCR models are sensitive to rounding everywhere. All-bfloat16 leaves 2 of 19 scenes with identical
  texts (165 line texts differ: spaces, case, ``℃``, and detection boxes that move enough to add, drop or
  reorder lines); rounding only the recogniser's input to bfloat16 already changes 1 of 432 texts.
  Identical texts need float32; bfloat16 is a speed option, on hardware where it is faster.
- ``keep_float32``: submodule names (``["backbone"]``) to run in float32 inside a low-precision model
  (never-rounded weights, inputs cast up and outputs cast down by hooks; the image enters in the dtype
  of the first layer). ``["backbone"]`` on the OCR pipeline: 12 of 19 scenes identical, 18 texts differ.
- ``num_threads``: ``torch.set_num_threads(n)`` when the engine is built. **Process-global**: it
  changes every PyTorch computation of the process, not only this model's.
- ``channels_last``: store the convolution weights (and inputs) in channels-last memory format.
  pxtorch models already run their activations in NHWC; this also converts the weights.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import platform
import shutil
import tempfile
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "ENGINES",
    "EngineError",
    "OnnxRuntimeModel",
    "TorchEngineModel",
    "apply_engine",
    "candidate_available",
    "engine_environment",
    "load_engine_priors",
    "parse_engine_spec",
    "resolve_auto_engine",
]

logger = logging.getLogger(__name__)

ENGINES = ("eager", "compile", "onnxruntime", "auto")

#: engine_config keys each engine accepts
ENGINE_CONFIG_KEYS: dict[str, tuple[str, ...]] = {
    "eager": ("channels_last", "dtype", "keep_float32", "num_threads"),
    "compile": (
        "backend",
        "channels_last",
        "dtype",
        "dynamic",
        "fullgraph",
        "keep_float32",
        "mode",
        "num_threads",
        "recompile_limit",
    ),
    "onnxruntime": ("dtype", "num_threads"),
    "auto": ("num_threads",),
}
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
}
#: where ``engine="auto"`` reads its measured candidates (tests point this elsewhere)
PRIORS_PATH = Path(__file__).with_name("engine_priors.json")
_METADATA_ATTRS = ("architecture", "pretrained_cfg", "model_args", "charset", "weights_source")
#: input dims that vary in the pipelines, per task (marked dynamic for engine="compile")
_DYNAMIC_DIMS = {
    "text_detection": (0, 2, 3),
    "seal_text_detection": (0, 2, 3),
    "text_recognition": (0, 3),
    "textline_orientation": (0,),
    "doc_text_orientation": (0,),
    "table_classification": (0,),
    "image_unwarping": (0, 2, 3),
    "layout_detection": (0,),
    "table_cells_detection": (0,),
    "table_structure_recognition": (0,),
}


class EngineError(RuntimeError):
    """An engine could not run a model (e.g. ``torch.compile`` failed). ``original`` is the underlying error."""

    def __init__(self, message: str, original: BaseException | None = None) -> None:
        super().__init__(message)
        self.original = original


def _copy_metadata(dst: nn.Module, src: nn.Module) -> None:
    for attr in _METADATA_ATTRS:
        setattr(dst, attr, getattr(src, attr, None))


def _model_label(model: nn.Module) -> str:
    return str(getattr(model, "architecture", None) or type(model).__name__)


# -- engine_config validation -----------------------------------------------------------------------
def _check_keys(engine: str, config: dict[str, Any]) -> None:
    known = ENGINE_CONFIG_KEYS[engine]
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise ValueError(
            f"unknown engine_config keys for engine {engine!r}: {unknown} (known: {', '.join(known) or 'none'})"
        )


def _parse_dtype(value: Any, device: torch.device, engine: str) -> torch.dtype:
    """``engine_config['dtype']`` -> a torch dtype usable on ``device``."""
    if isinstance(value, torch.dtype):
        dtype = value
    elif isinstance(value, str) and value.lower().removeprefix("torch.") in DTYPES:
        dtype = DTYPES[value.lower().removeprefix("torch.")]
    else:
        raise ValueError(
            f"engine_config dtype must be 'float32', 'bfloat16' or 'float16' (engine {engine!r}), got {value!r}"
        )
    if dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise ValueError(f"engine_config dtype {dtype} is not supported; use float32, bfloat16 or float16")
    if dtype == torch.float16 and device.type != "cuda":
        raise ValueError(
            f"engine_config dtype 'float16' needs a CUDA device (engine {engine!r} on {device}); "
            "use 'bfloat16' on the CPU"
        )
    if dtype == torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"engine_config dtype 'bfloat16' is not supported by {torch.cuda.get_device_name(device)}")
    return dtype


def _check_bool(name: str, value: Any, allow_none: bool = False) -> None:
    if not (isinstance(value, bool) or (allow_none and value is None)):
        raise ValueError(
            f"engine_config {name} must be {'True, False or None' if allow_none else 'a bool'}, got {value!r}"
        )


def _apply_num_threads(value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"engine_config num_threads must be a positive integer, got {value!r}")
    if torch.get_num_threads() != value:
        torch.set_num_threads(value)  # process-global


def cxx_compiler() -> str | None:
    """The C++ compiler inductor would use on the CPU, or ``None`` when there is none."""
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        return get_cpp_compiler()
    except Exception:  # InvalidCxxCompiler, or the private API moved
        return next((c for c in ("g++", "c++", "clang++") if shutil.which(c)), None)


def _compile_unavailable(device: torch.device) -> str | None:
    """Why ``torch.compile`` (inductor) cannot run on ``device``, or ``None`` when it can."""
    if device.type == "cpu":
        return None if cxx_compiler() else "no C++ compiler found (inductor needs g++ or $CXX on the CPU)"
    if device.type == "cuda":
        from torch.utils._triton import has_triton

        return None if has_triton() else "triton is not installed (inductor needs it on CUDA)"
    return None


# -- torch engines ----------------------------------------------------------------------------------
def _cast_except(model: nn.Module, dtype: torch.dtype, keep: tuple[str, ...]) -> None:
    """Cast ``model``'s floating-point parameters and buffers to ``dtype`` in place, except under ``keep``
    (those are never rounded: casting them back up later would not restore their precision)."""

    def kept(name: str) -> bool:
        return any(name == k or name.startswith(k + ".") for k in keep)

    for name, p in model.named_parameters():
        if not kept(name) and p.is_floating_point():
            p.data = p.data.to(dtype)
    for name, b in list(model.named_buffers()):
        if not kept(name) and b.is_floating_point():
            owner, _, attr = name.rpartition(".")
            setattr(model.get_submodule(owner) if owner else model, attr, b.to(dtype))


def _float32_island(model: nn.Module, name: str, dtype: torch.dtype) -> None:
    """Run submodule ``name`` in float32 inside a ``dtype`` model: float32 weights, inputs cast up on the
    way in, outputs cast down to ``dtype`` on the way out (forward hooks, so names and keys are kept)."""
    try:
        sub = model.get_submodule(name)
    except AttributeError:
        raise ValueError(
            f"engine_config keep_float32: {type(model).__name__} has no submodule {name!r} "
            f"(children: {', '.join(n for n, _ in model.named_children())})"
        ) from None
    sub.float()

    def cast_in(_module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)

    def cast_out(_module: nn.Module, _args: tuple[Any, ...], out: Any) -> Any:
        if isinstance(out, torch.Tensor):
            return out.to(dtype)
        if isinstance(out, (list, tuple)):
            return type(out)(o.to(dtype) if isinstance(o, torch.Tensor) else o for o in out)
        return out

    sub.register_forward_pre_hook(cast_in)
    sub.register_forward_hook(cast_out)


def _parse_keep_float32(value: Any) -> tuple[str, ...]:
    """``engine_config['keep_float32']``: a submodule name or a list of them (default: none)."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"engine_config keep_float32 must be a list of submodule names, got {value!r}")
    return tuple(value)


class TorchEngineModel(nn.Module):
    """A loaded pxtorch model run by a torch engine (``eager`` with settings, or ``compile``).

    Keeps the model's metadata (``architecture``, ``pretrained_cfg``, ``charset``, ...). Inputs are cast
    to ``dtype`` (and channels-last), the output goes through the model's activation in float32
    (``outputs_probabilities``): probabilities for recognisers/classifiers, the probability map for
    detectors.
    """

    outputs_probabilities = True

    def __init__(
        self,
        model: nn.Module,
        dtype: torch.dtype = torch.float32,
        channels_last: bool = False,
        keep_float32: tuple[str, ...] = (),
        compile_options: dict[str, Any] | None = None,
        dynamic_dims: tuple[int, ...] = (),
        recompile_limit: int = 16,
    ) -> None:
        super().__init__()
        _copy_metadata(self, model)
        self.label = _model_label(model)
        self.engine = "eager" if compile_options is None else "compile"
        self.dtype = dtype
        self.channels_last = channels_last
        self.softmax = getattr(model, "output_activation", "identity") == "softmax"
        self.keep_float32 = keep_float32 if dtype != torch.float32 else ()
        if dtype != torch.float32:
            _cast_except(model, dtype, self.keep_float32)
            for name in self.keep_float32:
                _float32_island(model, name, dtype)
        # The input enters in the dtype of the first layer: a float32 stem sees the float32 image.
        self.input_dtype = next((p.dtype for p in model.parameters()), dtype)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.dynamic_dims = dynamic_dims
        self.recompile_limit = recompile_limit
        self._cudagraphs = False
        self._run: Callable[[torch.Tensor], torch.Tensor] = self._core
        if compile_options is not None:
            # Compile the autograd (unfused) form: pxtorch's inference fast paths fold weights through a
            # Python-side cache that dynamo cannot trace; with grad mode on (and no parameter requiring
            # grad) the plain modules run and inductor does the fusing itself.
            for p in model.parameters():
                p.requires_grad_(False)
            self._cudagraphs = compile_options.get("mode") == "reduce-overhead"
            self._run = torch.compile(_own_code(self._core_traced, _model_label(model)), **compile_options)

    def _core(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.input_dtype)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        out = self.model(x)
        if isinstance(out, (tuple, list)):  # multi-output models (layout detectors, table structure)
            return type(out)(_to_float32(o) for o in out)
        out = out.float()
        return out.softmax(-1) if self.softmax else out

    def _core_traced(self, x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            return self._core(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.engine == "eager":
            return self._core(x)
        if self.dynamic_dims and x.dim() == 4:
            from torch._dynamo import maybe_mark_dynamic

            maybe_mark_dynamic(x, list(self.dynamic_dims))
        if self._cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()
        from torch._dynamo import config as dynamo_config

        try:
            with dynamo_config.patch(recompile_limit=self.recompile_limit):
                out = self._run(x)
        except Exception as e:
            raise _compile_error(e, self.label) from None
        # CUDA-graph outputs live in memory the next call overwrites
        if self._cudagraphs:
            return type(out)(o.clone() for o in out) if isinstance(out, (tuple, list)) else out.clone()
        return out


def _to_float32(value: Any) -> Any:
    return value.float() if isinstance(value, torch.Tensor) and value.is_floating_point() else value


def _own_code(method: Callable[..., Any], label: str) -> Callable[..., Any]:
    """``method`` bound to a copy of its code object named after the model.

    Dynamo keeps compiled graphs (and counts recompilations against ``recompile_limit``) per code
    object; with its own code each compiled model has its own cache instead of sharing one with every
    other :class:`TorchEngineModel` of the process, and shows up under its model's name in ``TORCH_LOGS``.
    """
    func = method.__func__  # type: ignore[attr-defined]
    name = "forward_" + "".join(c if c.isalnum() else "_" for c in label)
    code = func.__code__.replace(co_name=name, co_qualname=name)
    return types.MethodType(types.FunctionType(code, func.__globals__, name), method.__self__)  # type: ignore[attr-defined]


def _root_cause(e: BaseException) -> BaseException:
    seen = {id(e)}
    while True:
        inner = getattr(e, "inner_exception", None) or e.__cause__
        if inner is None or id(inner) in seen:
            return e
        seen.add(id(inner))
        e = inner


def _compile_error(e: Exception, label: str) -> Exception:
    """A one-paragraph :class:`EngineError` for a failed compiled call; other errors pass through."""
    from torch._dynamo.exc import TorchDynamoException

    try:
        from torch._inductor.exc import CppCompileError, InvalidCxxCompiler

        compiler_errors: tuple[type[BaseException], ...] = (TorchDynamoException, CppCompileError, InvalidCxxCompiler)
    except ImportError:  # pragma: no cover - older torch
        compiler_errors = (TorchDynamoException,)
    if not isinstance(e, compiler_errors):
        return e
    root = _root_cause(e)
    lines = [line.strip() for line in str(root).splitlines() if line.strip()]
    detail = " / ".join(lines[:3])
    if len(detail) > 400:
        detail = detail[:400] + " …"
    return EngineError(
        f"engine 'compile' failed on {label}: {type(root).__name__}: {detail} "
        "(use engine='eager', or TORCH_LOGS=+dynamo for the full trace)",
        original=e,
    )


def _torch_engine(model: nn.Module, engine: str, config: dict[str, Any], device: torch.device) -> nn.Module:
    """``eager``/``compile`` with their engine_config."""
    dtype = _parse_dtype(config.get("dtype", "float32"), device, engine)
    channels_last = config.get("channels_last", False)
    _check_bool("channels_last", channels_last)
    keep = _parse_keep_float32(config.get("keep_float32"))
    if engine == "eager":
        _apply_num_threads(config.get("num_threads"))
        if dtype == torch.float32 and not channels_last:
            return model  # nothing to do: the model itself, zero overhead
        return TorchEngineModel(model, dtype=dtype, channels_last=channels_last, keep_float32=keep)
    mode = config.get("mode")
    if mode is not None and mode not in COMPILE_MODES:
        raise ValueError(f"engine_config mode must be one of {', '.join(COMPILE_MODES)}, got {mode!r}")
    dynamic = config.get("dynamic")
    _check_bool("dynamic", dynamic, allow_none=True)
    fullgraph = config.get("fullgraph", False)
    _check_bool("fullgraph", fullgraph)
    backend = config.get("backend", "inductor")
    if not isinstance(backend, str):
        raise ValueError(f"engine_config backend must be a string, got {backend!r}")
    if backend == "inductor":
        reason = _compile_unavailable(device)
        if reason:
            raise EngineError(f"engine 'compile' is not available on {device}: {reason}")
    options: dict[str, Any] = {"backend": backend, "fullgraph": fullgraph, "dynamic": dynamic}
    if mode is not None:
        if backend != "inductor":
            raise ValueError(f"engine_config mode applies to the inductor backend, not {backend!r}")
        options["mode"] = mode
    limit = config.get("recompile_limit", 16)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"engine_config recompile_limit must be a positive integer, got {limit!r}")
    _apply_num_threads(config.get("num_threads"))
    dims: tuple[int, ...] = ()
    if dynamic is None:
        task = getattr(getattr(model, "pretrained_cfg", None), "task", None)
        dims = _DYNAMIC_DIMS.get(task, (0, 2, 3))
    return TorchEngineModel(
        model,
        dtype=dtype,
        channels_last=channels_last,
        keep_float32=keep,
        compile_options=options,
        dynamic_dims=dims,
        recompile_limit=limit,
    )


# -- onnxruntime ------------------------------------------------------------------------------------
class OnnxRuntimeModel(nn.Module):
    """A loaded pxtorch model exported to ONNX and run by onnxruntime.

    Keeps the model's metadata (``architecture``, ``pretrained_cfg``, ``charset``, ``model_args``). Its
    output already went through the model's activation (``outputs_probabilities``): probabilities for
    recognisers/classifiers, the probability map for detectors.
    """

    outputs_probabilities = True
    engine = "onnxruntime"

    def __init__(self, model: nn.Module, num_threads: int | None = None) -> None:
        super().__init__()
        import onnxruntime as ort

        from .export import export_onnx

        _copy_metadata(self, model)
        with tempfile.TemporaryDirectory(prefix="pxtorch-onnx-") as tmp:
            path = export_onnx(model.cpu().eval(), Path(tmp))
            options = ort.SessionOptions()
            if num_threads:
                options.intra_op_num_threads = int(num_threads)
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input_name: x.detach().cpu().float().numpy()})[0]
        return torch.from_numpy(out)


def _onnxruntime_engine(model: nn.Module, config: dict[str, Any], device: torch.device) -> nn.Module:
    if device.type != "cpu":
        raise ValueError(f"engine 'onnxruntime' runs on the CPU in this version; got device {device}")
    if _parse_dtype(config.get("dtype", "float32"), device, "onnxruntime") != torch.float32:
        raise ValueError("engine 'onnxruntime' runs float32 models only (engine_config dtype 'float32')")
    threads = config.get("num_threads")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"engine_config num_threads must be a positive integer, got {threads!r}")
    if importlib.util.find_spec("onnxruntime") is None:
        raise EngineError("engine 'onnxruntime' needs the onnxruntime package (pip install onnxruntime)")
    from .export.onnx import EXPORT_TASKS

    task = getattr(getattr(model, "pretrained_cfg", None), "task", None)
    if task not in EXPORT_TASKS:
        raise EngineError(f"engine 'onnxruntime' runs single-output models ({', '.join(EXPORT_TASKS)}), not '{task}'")
    return OnnxRuntimeModel(model, num_threads=threads)


# -- auto -------------------------------------------------------------------------------------------
def engine_environment(device: torch.device) -> str:
    """The priors key of ``device``: ``"cuda"``, or ``"cpu_<machine>"`` (``cpu_x86_64``, ``cpu_aarch64``)."""
    if device.type == "cuda":
        return "cuda"
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    return f"{device.type}_{machine}"


@functools.lru_cache(maxsize=4)
def _read_priors(path: str, mtime: float) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def load_engine_priors(path: str | Path | None = None) -> dict[str, Any]:
    """The measured engine candidates (``engine_priors.json``); empty when the file is missing."""
    path = Path(path or PRIORS_PATH)
    if not path.is_file():
        return {}
    return _read_priors(str(path), path.stat().st_mtime)


def candidate_available(engine: str, config: dict[str, Any], device: torch.device) -> str | None:
    """Why the ``(engine, engine_config)`` candidate cannot run on ``device`` here, or ``None`` when it can."""
    if engine not in ENGINES or engine == "auto":
        return f"unknown engine {engine!r}"
    dtype = str(config.get("dtype", "float32")).lower()
    if DTYPES.get(dtype) == torch.float16 and device.type != "cuda":
        return "float16 needs CUDA"
    if DTYPES.get(dtype) == torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return "bfloat16 is not supported by this GPU"
    if engine == "onnxruntime":
        if device.type != "cpu":
            return "onnxruntime runs on the CPU only"
        if importlib.util.find_spec("onnxruntime") is None:
            return "onnxruntime is not installed"
    if engine == "compile" and config.get("backend", "inductor") == "inductor":
        return _compile_unavailable(device)
    return None


def resolve_auto_engine(model: nn.Module, device: torch.device) -> tuple[str, dict[str, Any], str]:
    """``(engine, engine_config, why)``: the first available measured candidate for ``model`` on ``device``."""
    arch = _model_label(model)
    env = engine_environment(device)
    priors = load_engine_priors()
    entry = priors.get("environments", {}).get(env)
    if not entry:
        return "eager", {}, f"no measured engines for {env}"
    candidates = entry.get("models", {}).get(arch)
    if not candidates:
        return "eager", {}, f"no measured engines for {arch} on {env}"
    skipped = []
    for cand in candidates:
        engine, config = cand["engine"], dict(cand.get("engine_config") or {})
        reason = candidate_available(engine, config, device)
        if reason is None:
            note = f"; skipped {', '.join(skipped)}" if skipped else ""
            return engine, config, f"first available of {len(candidates)} measured on {env}{note}"
        skipped.append(f"{_spec(engine, config)} ({reason})")
    return "eager", {}, f"no measured candidate available on {env}: {', '.join(skipped)}"


def _spec(engine: str, config: dict[str, Any]) -> str:
    return engine + "".join(f":{k}={v}" for k, v in sorted(config.items()))


def _auto_engine(model: nn.Module, config: dict[str, Any], device: torch.device) -> nn.Module:
    engine, chosen, why = resolve_auto_engine(model, device)
    if "num_threads" in config:
        chosen["num_threads"] = config["num_threads"]
    label = _model_label(model)
    logger.info("engine 'auto' for %s on %s: %s (%s)", label, device, _spec(engine, chosen), why)
    try:
        return apply_engine(model, engine, chosen, device)
    except (EngineError, ImportError, OSError, RuntimeError, ValueError) as e:  # e.g. the ONNX export failed
        if engine == "eager" and not chosen:
            raise
        logger.warning("engine 'auto': %s failed for %s (%s); using eager", _spec(engine, chosen), label, e)
        return apply_engine(model, "eager", {k: v for k, v in chosen.items() if k == "num_threads"}, device)


def parse_engine_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"ENGINE[:OPTION...]"`` -> ``(engine, engine_config)``.

    Each OPTION is a dtype name (``bfloat16``, ``bf16``, ``float16``, ``float32``) or ``KEY=VALUE`` with
    VALUE parsed as JSON when it can be (``true``, ``4``) and as a string otherwise:
    ``"eager:bfloat16"``, ``"compile:mode=max-autotune-no-cudagraphs"``, ``"onnxruntime:num_threads=4"``.
    """
    engine, *options = spec.strip().split(":")
    config: dict[str, Any] = {}
    for opt in options:
        if "=" in opt:
            key, value = opt.split("=", 1)
            try:
                config[key] = json.loads(value)
            except json.JSONDecodeError:
                config[key] = value
        elif opt.lower() in DTYPES:
            config["dtype"] = opt.lower()
        else:
            raise ValueError(f"engine spec {spec!r}: option {opt!r} is neither a dtype nor KEY=VALUE")
    return engine, config


def apply_engine(
    model: nn.Module, engine: str | None, engine_config: dict[str, Any] | None, device: torch.device
) -> nn.Module:
    """``model`` run by ``engine`` (``None`` = ``"eager"``) with ``engine_config`` (see the module docs)."""
    engine = engine or "eager"
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    config = dict(engine_config or {})
    _check_keys(engine, config)
    if engine in ("eager", "compile"):
        return _torch_engine(model, engine, config, device)
    if engine == "onnxruntime":
        return _onnxruntime_engine(model, config, device)
    return _auto_engine(model, config, device)
