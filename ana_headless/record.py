"""Value classes for the launcher's path: equality, repr, replace() and as_dict() from
`__slots__`, which is what the package needs of dataclasses without importing them
(dataclasses imports inspect, before the child can start; see benchmarks/README.md). Only
for the modules between the launcher's start and the child's: elsewhere, dataclasses."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar

    R = TypeVar("R", bound="Record")


class Record:
    """Subclasses name their fields in `__slots__` and set them all in `__init__`."""

    __slots__: tuple[str, ...] = ()

    def _fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record) or type(other) is not type(self):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self._fields().items())
        return f"{type(self).__name__}({fields})"

    def replace(self: R, **changes: Any) -> R:
        """A copy with some fields changed."""
        return type(self)(**{**self._fields(), **changes})

    def as_dict(self) -> dict[str, Any]:
        return self._fields()
