"""Deterministic randomness keyed by (seed, *parts): the same key always draws the same values.

Every record of the world is generated from a `Draw` keyed by what the record is (source,
person, ordinal, ...), never from a shared random stream, so any record can be generated on
its own, in any order, by any process, and a 1,000,000-record world never has to sit in memory.
BLAKE2b is used instead of `random.Random` because its output is fixed by the algorithm, not
by the Python version.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from typing import Generic, TypeVar

T = TypeVar("T")

_WORDS = struct.Struct("<16I")
_SCALE = 1.0 / 4294967296.0


class Weighted(Generic[T]):
    """Options with weights, prepared once so that a draw is one bisection."""

    __slots__ = ("cumulative", "total", "values")

    def __init__(self, options: Sequence[tuple[T, float]]) -> None:
        self.values = [value for value, _ in options]
        self.cumulative = list(accumulate(weight for _, weight in options))
        self.cumulative[-1] = float("inf")  # rounding can never run past the last option
        self.total = sum(weight for _, weight in options)


class Draw:
    """A reproducible stream of pseudo-random numbers for one key."""

    __slots__ = ("_digest", "_position", "_words")

    def __init__(self, seed: int, *parts: object) -> None:
        key = "|".join([str(seed), *map(str, parts)]).encode()
        self._digest = hashlib.blake2b(key, digest_size=64).digest()
        self._words = _WORDS.unpack(self._digest)
        self._position = 0

    def u32(self) -> int:
        if self._position == 16:
            self._digest = hashlib.blake2b(self._digest, digest_size=64).digest()
            self._words = _WORDS.unpack(self._digest)
            self._position = 0
        word = self._words[self._position]
        self._position += 1
        return word

    def below(self, n: int) -> int:
        """An integer in [0, n)."""
        return self.u32() % n

    def between(self, low: int, high: int) -> int:
        """An integer in [low, high]."""
        return low + self.below(high - low + 1)

    def unit(self) -> float:
        """A float in [0, 1)."""
        return self.u32() * _SCALE

    def chance(self, probability: float) -> bool:
        return self.unit() < probability

    def choice(self, options: Sequence[T]) -> T:
        return options[self.below(len(options))]

    def weighted(self, options: Weighted[T]) -> T:
        """One of the options, with probability proportional to its weight."""
        return options.values[bisect_right(options.cumulative, self.unit() * options.total)]


_MASK64 = (1 << 64) - 1


def mix(*numbers: int) -> int:
    """A 64-bit hash of some integers (SplitMix64 steps): for the hot paths that need one
    reproducible number per record and cannot afford a BLAKE2b digest."""
    state = 0x9E3779B97F4A7C15
    for number in numbers:
        state = (state ^ number) * 0xBF58476D1CE4E5B9 & _MASK64
        state = (state ^ (state >> 27)) * 0x94D049BB133111EB & _MASK64
        state ^= state >> 31
    return state


# base64 without its two symbols: ids of letters and digits, as Whop and GoHighLevel use.
_ALNUM_ONLY = bytes.maketrans(b"+/", b"Xq")
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def token(length: int, seed: int, *parts: object, urlsafe: bool = False) -> str:
    """An identifier (up to 86 characters) that is stable for its key and never collides in
    practice: letters and digits, or also '-' and '_' when `urlsafe`."""
    key = "|".join([str(seed), "token", *map(str, parts)]).encode()
    encoded = base64.b64encode(hashlib.blake2b(key, digest_size=64).digest())
    return encoded.translate(_URLSAFE if urlsafe else _ALNUM_ONLY)[:length].decode()
