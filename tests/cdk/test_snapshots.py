"""One JSON snapshot per stack (dev configuration) to catch drift. Asset hashes are scrubbed.

Re-record only after reading the diff: ``pytest tests/cdk/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

import json
import re

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

HASH = re.compile(r"[0-9a-f]{64}")


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("role", ["network", "database", "image", "cluster", "airflow"])
def test_stack_matches_snapshot(dev, role, snapshot_json):
    template = json.loads(HASH.sub("<asset-hash>", json.dumps(dev.templates()[role], sort_keys=True)))
    assert template == snapshot_json
