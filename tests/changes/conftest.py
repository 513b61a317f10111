"""Synthesize each configuration once per session for the change check (jsii costs seconds per app).

A configuration is a dict of context overrides, plus optionally a code patch (module attribute ->
value) for changes that no configuration key makes (the database's name, its KMS key).
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from unittest import mock

import pytest

from changes.check import StackTemplates
from tests.cdk.conftest import synthesize

_CACHE: dict[str, StackTemplates] = {}


@pytest.fixture(scope="session")
def assembly(tmp_path_factory):
    """Return ``(overrides, patches=None) -> StackTemplates``, synthesized once per distinct input."""

    def get(overrides: dict[str, str], patches: dict[str, object] | None = None) -> StackTemplates:
        key = json.dumps([overrides, sorted((patches or {}).items(), key=str)], sort_keys=True, default=str)
        if key not in _CACHE:
            outdir = tmp_path_factory.mktemp("changes-cdk")
            with ExitStack() as stack:
                for target, value in (patches or {}).items():
                    stack.enter_context(mock.patch(target, value))
                synthesize(overrides, outdir)
            _CACHE[key] = StackTemplates.from_assembly(outdir)
        return _CACHE[key]

    return get
