"""Model families. Importing this package registers every model (timm style)."""

from .text_det_db import *  # noqa: F403
from .text_rec_svtr import *  # noqa: F403
from .textline_orientation import *  # noqa: F403
