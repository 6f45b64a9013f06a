"""Observations ready to assimilate: flux-tower processing (``flux``: QC, u* filtering,
MDS gap filling, partitioning, random error), multi-sensor satellite fusion into gap-filled
daily series (``fusion``) and synthetic observation generators for twin experiments
(``synthetic``)."""
from .types import Observations, to_observations  # noqa: E402

__all__ = ["Observations", "to_observations"]
