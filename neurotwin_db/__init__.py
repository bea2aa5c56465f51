"""neurotwin_db: curate, catalogue and model the Neurotwin Database.

The public API is listed in ``__all__``; everything else is private.
"""

__version__ = "0.1.0"

from neurotwin_db.bidspath import BIDSPath  # noqa: E402
from neurotwin_db.errors import NeurotwinError  # noqa: E402
from neurotwin_db.report import Issue, Report, Severity  # noqa: E402

__all__ = ["BIDSPath", "Issue", "NeurotwinError", "Report", "Severity", "__version__"]
