"""Label maps for DB training (shrink and threshold maps)."""

from .db_targets import make_border_map, make_db_targets, make_shrink_map

__all__ = ["make_border_map", "make_db_targets", "make_shrink_map"]
