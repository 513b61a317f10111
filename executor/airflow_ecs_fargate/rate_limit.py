"""Client-side pacing of ECS API calls: a token bucket and jittered exponential backoff."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable


class ShuttingDown(Exception):
    """Raised by :meth:`TokenBucket.acquire` when the executor is stopping."""


class TokenBucket:
    """Thread-safe token bucket, the algorithm AWS itself uses to throttle ECS and Fargate.

    A bucket starts full with ``capacity`` tokens and refills at ``rate`` tokens per second.
    See https://docs.aws.amazon.com/AmazonECS/latest/APIReference/request-throttling.html and
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/throttling.html for the quotas
    that the executor's defaults mirror.

    :param rate: refill rate in tokens per second (> 0).
    :param capacity: maximum number of tokens, the burst (>= 1).
    :param clock: monotonic clock in seconds (injectable for tests).
    :raises ValueError: ``rate`` <= 0 or ``capacity`` < 1.
    """

    def __init__(self, rate: float, capacity: float, clock: Callable[[], float] = time.monotonic):
        if rate <= 0:
            raise ValueError(f"rate must be > 0 tokens/s, got {rate!r}")
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1 token, got {capacity!r}")
        self.rate = float(rate)
        self.capacity = float(capacity)
        self._clock = clock
        self._tokens = float(capacity)
        self._updated = clock()
        self._lock = threading.Lock()

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
        self._updated = now

    def try_acquire(self, tokens: float = 1.0) -> float:
        """Take ``tokens`` if available.

        :return: 0.0 when the tokens were taken, else the seconds to wait before they will be.
        """
        with self._lock:
            now = self._clock()
            self._refill(now)
            if self._tokens >= tokens:
                self._tokens -= tokens
                return 0.0
            return (tokens - self._tokens) / self.rate

    def acquire(self, tokens: float = 1.0, stop: threading.Event | None = None) -> float:
        """Block the calling (worker) thread until ``tokens`` are taken.

        Never call this from the scheduler's heartbeat.

        :param stop: when set while waiting, give up.
        :return: seconds spent waiting.
        :raises ShuttingDown: ``stop`` was set.
        """
        waited = 0.0
        while True:
            wait = self.try_acquire(tokens)
            if wait == 0.0:
                return waited
            if stop is not None:
                if stop.wait(wait):
                    raise ShuttingDown()
            else:
                time.sleep(wait)
            waited += wait

    def drain(self) -> None:
        """Empty the bucket, e.g. after AWS answered ThrottlingException, so all callers slow down."""
        with self._lock:
            self._refill(self._clock())
            self._tokens = min(self._tokens, 0.0)


def backoff_delay(
    attempt: int, base_seconds: float, max_seconds: float, rng: Callable[[], float] = random.random
) -> float:
    """Exponential backoff with "equal jitter" (half fixed, half random).

    Delay for attempt ``n`` (1-based) is ``d/2 + U(0, d/2)`` with ``d = min(max, base * 2**(n-1))``,
    as recommended by AWS for retrying throttled calls
    (https://aws.amazon.com/builders-library/timeouts-retries-and-backoff-with-jitter/).

    :param attempt: 1 for the first retry.
    :return: delay in seconds, in ``[d/2, d]``.
    """
    exp = min(max(attempt - 1, 0), 32)
    ceiling = min(max_seconds, base_seconds * (2**exp))
    return ceiling / 2 + rng() * ceiling / 2
