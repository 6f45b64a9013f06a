"""Former home of the driver gap filler; it lives in :mod:`process_models.io.gap_filling`
(``from process_models.io import fill_gaps``). Kept only for the callers that still import
it from here."""
from ..io import fill_gaps

__all__ = ["fill_gaps"]
