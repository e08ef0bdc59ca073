"""Model families. Importing this package registers every model (timm style)."""

from .picodet import *  # noqa: F403
from .pp_lcnet import *  # noqa: F403
from .pp_ocr_server import *  # noqa: F403
from .pp_ocrv6 import *  # noqa: F403
from .rt_detr import *  # noqa: F403
from .slanet import *  # noqa: F403
from .slanext import *  # noqa: F403
from .text_det_db import *  # noqa: F403
from .text_det_seal import *  # noqa: F403
from .text_rec_svtr import *  # noqa: F403
from .textline_orientation import *  # noqa: F403
from .uvdoc import *  # noqa: F403
