"""pxtorch: PaddleX for PyTorch.

Public API: :func:`pipeline`, :func:`create_model`, :func:`list_models`, :func:`from_pretrained`,
:func:`save_pretrained`.
"""

from . import models as _models  # noqa: F401  (registers every model)
from ._checkpoint import CheckpointError, save_pretrained
from ._factory import create_model
from ._registry import UnknownModelError, get_pretrained_cfg, list_models
from .convert.hf_layout import LayoutError
from .hub import WeightsNotFoundError, from_pretrained
from .layers import reparameterize_model
from .pipelines import get_pipeline_config, list_pipelines, pipeline
from .version import __version__

__all__ = [
    "CheckpointError",
    "LayoutError",
    "UnknownModelError",
    "WeightsNotFoundError",
    "__version__",
    "create_model",
    "from_pretrained",
    "get_pipeline_config",
    "get_pretrained_cfg",
    "list_models",
    "list_pipelines",
    "pipeline",
    "reparameterize_model",
    "save_pretrained",
]
