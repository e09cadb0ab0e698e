"""Faults on demand: what can go wrong between the product and a SaaS API, made to happen.

A `FaultPlan` is a rate limit (or none) plus a list of `Fault`s. Each fault targets a path prefix
and method, can let the first `skip` matching requests through, fire on a fraction `rate` of the
rest (drawn from a seeded RNG, so a run is repeatable) and retire after `count` firings. Plans
are plain data, so the same plan can be given at start, set from Python while the server runs,
or POSTed as JSON to the server's `/_sandbox/faults`.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

FaultKind = Literal["error", "latency", "hang", "drop", "malformed", "repeat"]
FAULT_KINDS: tuple[str, ...] = ("error", "latency", "hang", "drop", "malformed", "repeat")
MalformedMode = Literal["invalid_json", "wrong_shape"]
DAY_SECONDS = 86_400.0


@dataclass
class Fault:
    """One fault rule.

    kinds:
      error      answer `status` (5xx by default) with the system's error body; a 429 is
                 answered as the system's rate limit answers (its body, its headers, a wait
                 hint of `retry_after` seconds where the system sends one)
      latency    delay the answer by `seconds`, then answer normally
      hang       stall `seconds` (default 30: past any sane client timeout), then answer
      drop       close the connection without answering
      malformed  answer 200 with a broken page: `malformed="invalid_json"` (truncated) or
                 `"wrong_shape"` (the page's record list replaced by an object)
      repeat     answer with the previous page of the same endpoint again (same body, same cursor)
    `after_handler` (error, drop): let the request take effect first, then fail, the way a
    create that succeeded can still lose its answer.
    """

    kind: FaultKind
    path: str | None = None
    method: str | None = None
    count: int | None = None
    skip: int = 0
    rate: float = 1.0
    status: int = 500
    seconds: float = 30.0
    retry_after: float = 1.0
    malformed: MalformedMode = "invalid_json"
    after_handler: bool = False
    seen: int = field(default=0, compare=False)
    fired: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be within 0..1, got {self.rate}")
        if self.malformed not in ("invalid_json", "wrong_shape"):
            raise ValueError(f"unknown malformed mode {self.malformed!r}")

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path is None or path.startswith(self.path)

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.fired >= self.count

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        known = {f.name for f in fields(cls)} - {"seen", "fired"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault field(s) {sorted(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class RateLimit:
    """At most `max_requests` per sliding `window_seconds` (per bucket: an endpoint or a whole
    API, as the system counts). Once over, every request is refused for `cooldown_seconds`
    (Whop's documented 60 s) and a fresh window starts after it; with no cooldown, requests
    are refused until the window has room again. `daily_max` caps a rolling day."""

    max_requests: int
    window_seconds: float
    cooldown_seconds: float | None = None
    daily_max: int | None = None

    def scaled(self, factor: float) -> RateLimit:
        """The same limit with its times multiplied by `factor` (tests run it 100x faster)."""
        cooldown = None if self.cooldown_seconds is None else self.cooldown_seconds * factor
        return replace(self, window_seconds=self.window_seconds * factor, cooldown_seconds=cooldown)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RateLimit:
        return cls(**data)


@dataclass
class FaultPlan:
    rate_limit: RateLimit | None = None
    faults: list[Fault] = field(default_factory=list)
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "rate_limit": asdict(self.rate_limit) if self.rate_limit else None,
            "faults": [asdict(fault) for fault in self.faults],
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultPlan:
        unknown = set(data) - {"rate_limit", "faults", "seed"}
        if unknown:
            raise ValueError(f"unknown fault plan field(s) {sorted(unknown)}")
        limit = data.get("rate_limit")
        return cls(
            rate_limit=RateLimit.from_dict(limit) if limit else None,
            faults=[Fault.from_dict(dict(item)) for item in data.get("faults") or []],
            seed=int(data.get("seed") or 0),
        )


@dataclass(frozen=True)
class LimitState:
    """What a rate-limit answer and the X-RateLimit-* headers report."""

    limit: RateLimit
    remaining: int
    daily_remaining: int | None
    retry_after: float | None  # seconds; set when the request is refused


class RateLimiter:
    """Sliding-window counter per bucket. With `enforce` off it only counts (GoHighLevel reports
    its limits on every answer even when nobody is near them)."""

    def __init__(self, limit: RateLimit, *, enforce: bool, clock=time.monotonic) -> None:
        self.limit = limit
        self.enforce = enforce
        self._clock = clock
        self._windows: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}
        self._day_started = clock()
        self._day_count = 0

    def admit(self, bucket: str) -> LimitState:
        """Count a request (unless refused) and say whether it may go on."""
        now = self._clock()
        window = self._current_window(bucket, now)
        refused_for = self._refusal(bucket, window, now) if self.enforce else None
        if refused_for is None:
            window.append(now)
            self._day_count += 1
        return self._state(window, refused_for)

    def peek(self, bucket: str) -> LimitState:
        """The state without counting a request (for answers refused before the limit)."""
        return self._state(self._current_window(bucket, self._clock()), None)

    def _current_window(self, bucket: str, now: float) -> deque[float]:
        if now - self._day_started >= DAY_SECONDS:
            self._day_started, self._day_count = now, 0
        window = self._windows.setdefault(bucket, deque())
        while window and window[0] <= now - self.limit.window_seconds:
            window.popleft()
        return window

    def _state(self, window: deque[float], refused_for: float | None) -> LimitState:
        limit = self.limit
        daily_left = None if limit.daily_max is None else max(0, limit.daily_max - self._day_count)
        remaining = max(0, limit.max_requests - len(window))
        return LimitState(limit, remaining, daily_left, refused_for)

    def _refusal(self, bucket: str, window: deque[float], now: float) -> float | None:
        limit = self.limit
        blocked_until = self._blocked_until.get(bucket, 0.0)
        if now < blocked_until:
            return blocked_until - now
        if limit.daily_max is not None and self._day_count >= limit.daily_max:
            return self._day_started + DAY_SECONDS - now
        if len(window) < limit.max_requests:
            return None
        wait = limit.cooldown_seconds
        if wait is None:
            wait = window[0] + limit.window_seconds - now
        else:
            window.clear()  # after a cooldown the client starts a fresh window
        self._blocked_until[bucket] = now + wait
        return wait


def retry_after_headers(seconds: float) -> list[tuple[bytes, bytes]]:
    """Retry-After in whole seconds (rounded up, as HTTP wants) and the precise retry-after-ms
    the official Whop SDKs read first."""
    return [
        (b"retry-after", str(max(1, math.ceil(seconds))).encode()),
        (b"retry-after-ms", str(max(1, math.ceil(seconds * 1000))).encode()),
    ]
