"""Every spec type has an entry in every registry keyed by spec type (issue 18): a formula, a
training rule, a saved-tensor rule, a builder and a convention kind — "does not apply" an explicit
entry with its reason; an unknown type is named, never defaulted; a duplicate is refused."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from costlab.analyses.conventions.kinds import KIND_OF
from costlab.analyses.memory import SAVED_RULES
from costlab.analyses.training import TRAINING_RULES
from costlab.core import specs
from costlab.core.errors import CostlabError
from costlab.core.formulas import FORMULAS
from costlab.core.registry import SPEC_TYPES, NotApplicable, RegistryError, SpecRegistry

REGISTRIES: list[SpecRegistry] = [FORMULAS, TRAINING_RULES, SAVED_RULES, KIND_OF]
try:
    from costlab.torch_bridge.build import BUILDERS
    REGISTRIES.append(BUILDERS)
except ImportError:  # no torch: the builder's registry is checked where torch is
    pass


def _concrete_spec_types() -> set[type]:
    """Found apart from the registries: every dataclass of costlab.core.specs that labels a layer
    (what the catalogs and the tracer build layers from; the catalogs' entries label nothing)."""
    return {value for value in vars(specs).values()
            if isinstance(value, type) and dataclasses.is_dataclass(value) and value.__module__ == specs.__name__
            and callable(getattr(value, "label", None))}


def test_spec_types_are_every_concrete_spec() -> None:
    assert set(SPEC_TYPES) == _concrete_spec_types() == set(typing.get_args(specs.Spec))


@pytest.mark.parametrize("registry", REGISTRIES, ids=lambda r: r.name)
def test_every_spec_type_has_an_entry(registry: SpecRegistry) -> None:
    assert registry.missing() == []
    for spec_type in SPEC_TYPES:
        entry = registry.entry(spec_type)
        assert entry.reason if isinstance(entry, NotApplicable) else entry is not None, (registry.name, spec_type)


@pytest.mark.parametrize("registry", REGISTRIES, ids=lambda r: r.name)
def test_an_unknown_spec_type_is_named(registry: SpecRegistry) -> None:
    class Unknown:
        pass

    with pytest.raises(CostlabError, match=f"no {registry.name} for the spec type Unknown"):
        registry[Unknown]


def test_a_duplicate_is_refused_and_a_subclass_resolves_once() -> None:
    registry: SpecRegistry = SpecRegistry("rule")
    registry.register(specs.Linear)(len)
    with pytest.raises(RegistryError, match="Linear is registered twice"):
        registry.register(specs.Linear)(len)

    @dataclasses.dataclass(frozen=True)
    class Wide(specs.Linear):
        pass

    assert registry[Wide] is len and registry[Wide] is len
    assert registry.missing((Wide,)) == ["Wide"]  # resolved, still not an entry of its own


def test_not_applicable_says_why() -> None:
    registry: SpecRegistry = SpecRegistry("builder")
    registry.not_applicable(specs.Held, "runs nothing")
    assert registry.get(specs.Held) is None and not registry.applies(specs.Held)
    with pytest.raises(RegistryError, match="no builder for the spec type Held: runs nothing"):
        registry[specs.Held]
