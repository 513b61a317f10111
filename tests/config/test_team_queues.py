"""Team queues (issue 19 item 4): a ``worker_queues`` entry that names what its tasks may reach.
Bad input is refused before synthesis with the key and the fix."""

from __future__ import annotations

import json

import pytest

from app_config import ConfigError, load_config

SIZE = {"cpu": 1024, "memory_mib": 2048}


def problems_of(queues: dict, **raw) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config({"worker_queues": json.dumps(queues), **raw})
    return info.value.problems


def test_a_team_queue_keeps_its_settings():
    queues = {
        "team-a": {**SIZE, "s3_prefixes": ["team-a/"], "secrets_prefixes": "team-a/",
                   "managed_policy_arns": ["arn:aws:iam::aws:policy/service-role/AWSGlueServiceRole"],
                   "jobs": ["upload-file-to-s3"]},
        "large": {"cpu": 2048, "memory_mib": 8192},
    }
    (team, large) = load_config({"worker_queues": json.dumps(queues)}).executor.worker_queues
    assert team.is_team and not large.is_team
    assert (team.s3_prefixes, team.secrets_prefixes, team.jobs) == (("team-a/",), ("team-a/",), ("upload-file-to-s3",))


@pytest.mark.parametrize(
    ("queues", "expected"),
    [
        ({"a": {**SIZE, "managed_policy_arns": ["arn:aws:iam::123456789012:role/team-a"]}},
         "worker_queues: queue 'a': managed_policy_arns: 'arn:aws:iam::123456789012:role/team-a' is not an IAM "
         "managed policy ARN; write it like arn:aws:iam::123456789012:policy/team-a"),
        ({"a": {**SIZE, "managed_policy_arns": ["ReadOnlyAccess"]}}, "'ReadOnlyAccess' is not an IAM managed policy ARN"),
        ({"a": {**SIZE, "s3_prefixes": ["teams/"]}, "b": {**SIZE, "s3_prefixes": ["teams/b/"]}},
         "worker_queues: queue 'a' s3_prefixes 'teams/' overlaps queue 'b''s 'teams/b/': each team's prefixes must be "
         "its own"),
        ({"a": {**SIZE, "secrets_prefixes": ["shared/"]}, "b": {**SIZE, "secrets_prefixes": ["shared/"]}},
         "worker_queues: queue 'a' secrets_prefixes 'shared/' overlaps queue 'b''s 'shared/'"),
        ({"a": {**SIZE, "jobs": ["no-such-job"]}},
         "worker_queues: queue 'a': jobs: 'no-such-job' is not a job of the jobs key (jobs: upload-file-to-s3); "
         "add it to jobs or remove it from the queue"),
        ({"a": {**SIZE, "s3_prefixes": ["/abs/*"]}}, "worker_queues: queue 'a': s3_prefixes: '/abs/*' is not a key prefix"),
        ({"a": {**SIZE, "secrets_prefixes": ["team a/"]}}, "secrets_prefixes: 'team a/' is not a Secrets Manager name prefix"),
        ({"a.b": {**SIZE, "jobs": ["upload-file-to-s3"]}}, "queue 'a.b': a queue with a role of its own names a task "
         "definition family and an IAM role; use letters, digits, - and _ only"),
        ({"q" * 50: {**SIZE, "jobs": ["upload-file-to-s3"]}}, "characters, over IAM's 64; shorten the queue name"),
    ],
)
def test_bad_team_queue_is_refused_with_the_key_and_the_fix(queues, expected):
    found = problems_of(queues)
    assert any(expected in p for p in found), found


def test_a_job_removed_from_jobs_is_refused_where_a_queue_names_it():
    found = problems_of({"a": {**SIZE, "jobs": ["upload-file-to-s3"]}}, jobs="{}")
    assert found == ["worker_queues: queue 'a': jobs: 'upload-file-to-s3' is not a job of the jobs key (jobs: none); "
                     "add it to jobs or remove it from the queue"]


def test_prefixes_of_one_team_may_nest():
    """Overlap is checked between teams, not within one."""
    (queue,) = load_config({"worker_queues": json.dumps({"a": {**SIZE, "s3_prefixes": ["a/", "a/in/"]}})}).executor.worker_queues
    assert queue.s3_prefixes == ("a/", "a/in/")
