"""Registries keyed by spec type: one per concern (formula, training rule, saved tensors, builder,
convention kind), each filled by a decorator that refuses a duplicate, as
``torch.utils.flop_counter`` registers its formulas.

Every concrete spec type (:data:`SPEC_TYPES`, the members of :data:`costlab.core.specs.Spec`) has an
entry in every registry; where a concern does not apply to a type, the entry says so with its
reason (:class:`NotApplicable`), never a default branch. Looking up a type without an entry raises
a :class:`RegistryError` naming the spec type and the registry. A lookup is a dict access by
``type(spec)``; a subclass of a registered type is resolved through its MRO once and remembered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Generic, Iterator, TypeVar, Union, get_args

from .errors import SpecError
from .specs import Spec

#: Every concrete spec type the catalogs and the tracer can produce.
SPEC_TYPES: tuple[type, ...] = get_args(Spec)

Entry = TypeVar("Entry")


class RegistryError(SpecError):
    """A spec type without an entry in a registry, or a second entry for one."""


@dataclass(frozen=True)
class NotApplicable:
    """An explicit entry for a spec type a concern does not apply to, with the reason."""

    reason: str


class SpecRegistry(Generic[Entry]):
    """Spec type → entry (a rule, or :class:`NotApplicable`). ``register`` is a decorator."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._entries: dict[type, Union[Entry, NotApplicable]] = {}
        self._resolved: dict[type, Union[Entry, NotApplicable]] = {}  # subclasses, resolved once

    def register(self, *types: type) -> Callable[[Entry], Entry]:
        """Register the decorated rule for each of ``types``; a type registered twice raises."""
        def decorate(rule: Entry) -> Entry:
            for spec_type in types:
                self._add(spec_type, rule)
            return rule
        return decorate

    def not_applicable(self, spec_type: type, reason: str) -> None:
        """State that this concern does not apply to ``spec_type``, and why."""
        self._add(spec_type, NotApplicable(reason))

    def _add(self, spec_type: type, entry: Union[Entry, NotApplicable]) -> None:
        if spec_type in self._entries:
            raise RegistryError(f"{self.name}: {spec_type.__name__} is registered twice")
        self._entries[spec_type] = entry

    def entry(self, spec_type: type) -> Union[Entry, NotApplicable]:
        """The entry of ``spec_type`` (rule or NotApplicable); a subclass resolves to its nearest
        registered base, once."""
        try:
            return self._entries[spec_type]
        except KeyError:
            pass
        try:
            return self._resolved[spec_type]
        except KeyError:
            pass
        for base in spec_type.__mro__[1:]:
            if base in self._entries:
                found = self._resolved[spec_type] = self._entries[base]
                return found
        raise RegistryError(f"no {self.name} for the spec type {spec_type.__name__}")

    def __getitem__(self, spec_type: type) -> Entry:
        """The rule of ``spec_type``; a RegistryError naming the reason when it does not apply."""
        found = self.entry(spec_type)
        if isinstance(found, NotApplicable):
            raise RegistryError(f"no {self.name} for the spec type {spec_type.__name__}: {found.reason}")
        return found

    def get(self, spec_type: type) -> Entry | None:
        """The rule, or None where the registry says it does not apply (unknown still raises)."""
        found = self.entry(spec_type)
        return None if isinstance(found, NotApplicable) else found

    def applies(self, spec_type: type) -> bool:
        """Whether ``spec_type`` has a rule (False for a NotApplicable entry; unknown raises)."""
        return not isinstance(self.entry(spec_type), NotApplicable)

    def missing(self, spec_types: tuple[type, ...] = SPEC_TYPES) -> list[str]:
        """The names of the spec types without an entry of their own."""
        return [t.__name__ for t in spec_types if t not in self._entries]

    def __contains__(self, spec_type: object) -> bool:
        return spec_type in self._entries

    def __iter__(self) -> Iterator[type]:
        return iter(dict(self._entries))

    def __len__(self) -> int:
        return len(self._entries)
