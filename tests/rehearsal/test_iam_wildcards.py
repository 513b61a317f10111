"""IAM's wildcards in the AWS stand-in (local_ecs.aws.iam_wildcard_match): ``?`` is one character.

A secret imported by name (``Secret.from_secret_name_v2``, the git bundle's ``dag_bundle_git_secret``)
is granted as ``arn:...:secret:<name>-??????``; moto 5.2.5's own matcher fails on that pattern
(``re.error``, HTTP 500 and a recorded denial), which stopped the git bundle rehearsal's
dag-processor with ``ResourceInitializationError: unable to pull secrets``.
"""

from __future__ import annotations

import re

import pytest
from moto.iam.access_control import IAMPolicyStatement

from local_ecs.aws import iam_wildcard_match

GRANT = "arn:aws:secretsmanager:us-east-1:123456789012:secret:airflow/dev/git-dags-??????"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:airflow/dev/git-dags-THAYCY"


def test_moto_alone_fails_on_the_grant_of_a_secret_imported_by_name():
    with pytest.raises(re.error):
        IAMPolicyStatement._match(GRANT, SECRET)


@pytest.mark.parametrize(("pattern", "value", "matches"), [
    (GRANT, SECRET, True),
    (GRANT, SECRET + "X", False),  # ? is exactly one character
    (GRANT, SECRET[:-1], False),
    (GRANT, SECRET.replace("git-dags", "git-dogs"), False),
    ("arn:aws:s3:::bucket/dags/*", "arn:aws:s3:::bucket/dags/a/b.py", True),
    ("s3:Get*", "s3:GetObject", True),
    ("arn:aws:s3:::my.bucket", "arn:aws:s3:::myXbucket", False),  # . is literal, not any character
    ("*", "anything", True),
])
def test_iam_wildcards(pattern, value, matches):
    assert (iam_wildcard_match(pattern, value) is not None) is matches
