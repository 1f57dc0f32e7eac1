"""The virtual screen, WxHxD, as Xvfb's -screen takes it."""

from __future__ import annotations

VALID_DEPTHS = (8, 15, 16, 24, 30, 32)
# The largest screen Xvfb accepts in each dimension.
MAX_SIDE = 32767


class Screen:
    """A virtual screen, WxHxD (a plain class: a NamedTuple would import typing)."""

    __slots__ = ("depth", "height", "width")

    def __init__(self, width: int, height: int, depth: int) -> None:
        self.width, self.height, self.depth = width, height, depth

    def _key(self) -> tuple[int, int, int]:
        return (self.width, self.height, self.depth)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Screen) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Screen({self.width}, {self.height}, {self.depth})"

    def __str__(self) -> str:
        return f"{self.width}x{self.height}x{self.depth}"

    @classmethod
    def parse(cls, text: str) -> Screen:
        """WxHxD, as Xvfb's -screen takes it; ValueError says what is accepted."""
        parts = text.strip().split("x")
        if len(parts) == 3 and all(part.isdigit() for part in parts):
            width, height, depth = map(int, parts)
            if 1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE and depth in VALID_DEPTHS:
                return cls(width, height, depth)
        raise ValueError(
            f"{text!r} is not WxHxD with W and H from 1 to {MAX_SIDE} and D one "
            f"of {', '.join(map(str, VALID_DEPTHS))}."
        )
