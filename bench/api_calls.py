"""Counts the ECS API calls a process makes, whichever boto3 client or thread makes them."""

from __future__ import annotations

import threading
from collections import Counter

from botocore.client import BaseClient


class EcsCallCounter:
    """Counts logical ECS API calls (one per client method call, however many HTTP retries botocore adds).

    It wraps ``BaseClient._make_api_call`` for the whole process, so an executor that builds extra clients
    or calls from worker threads is counted the same as one that uses a single client.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._original = None

    def install(self) -> None:
        if self._original is not None:
            return
        original = BaseClient._make_api_call
        counter = self

        def _make_api_call(client, operation_name, api_params):
            if client.meta.service_model.service_name == "ecs":
                with counter._lock:
                    counter._calls[operation_name] += 1
            return original(client, operation_name, api_params)

        self._original = original
        BaseClient._make_api_call = _make_api_call

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._calls)
