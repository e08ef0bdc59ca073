"""Model families. Importing this package registers every model (timm style)."""

from .pp_ocr_server import *  # noqa: F403
from .pp_ocrv6 import *  # noqa: F403
from .text_det_db import *  # noqa: F403
from .text_rec_svtr import *  # noqa: F403
from .textline_orientation import *  # noqa: F403
