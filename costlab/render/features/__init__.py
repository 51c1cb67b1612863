"""Each feature's presenter (how it is drawn), one module per feature, registered by the feature's
name in :mod:`.registry`; importing this package registers them all."""

from . import checks, convention, latency, memory, training  # noqa: F401 - each module registers its presenter
from .registry import PRESENTERS, Presenter, presenter, register  # noqa: F401
