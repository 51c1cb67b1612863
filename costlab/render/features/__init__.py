"""Each feature's presenter (how it is drawn), one module per feature, registered by the feature's
name in :mod:`.registry`; importing this package registers them all."""

from . import checks, convention, generation, latency, memory, prediction, training  # each module registers its presenter
from .registry import PRESENTERS, Presenter, UnpresentedFeature, presenter, register

__all__ = ["PRESENTERS", "Presenter", "UnpresentedFeature", "presenter", "register",
           "checks", "convention", "generation", "latency", "memory", "prediction", "training"]
