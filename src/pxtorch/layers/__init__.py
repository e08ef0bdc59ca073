"""Building blocks shared by several model families."""

from .activations import HardSigmoid, make_activation
from .conv_bn import ConvBNAct, fuse_bn, make_divisible
from .lab import LearnableAffineBlock
from .rep import LabActivation, LearnableRepLayer, reparameterize_model
from .squeeze_excite import SEModule

__all__ = [
    "ConvBNAct",
    "HardSigmoid",
    "LabActivation",
    "LearnableAffineBlock",
    "LearnableRepLayer",
    "SEModule",
    "fuse_bn",
    "make_activation",
    "make_divisible",
    "reparameterize_model",
]
