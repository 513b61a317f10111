"""A dev deployment deletes cleanly: nothing refills a bucket after CloudFormation emptied it."""

from __future__ import annotations

import re

import pytest

from .conftest import resources_of

AUTO_DELETE = "Custom::S3AutoDeleteObjects"


def _logged_buckets(template: dict, access_logs_id: str) -> dict[str, dict]:
    return {
        logical: bucket
        for logical, bucket in resources_of(template, "AWS::S3::Bucket").items()
        if bucket["Properties"].get("LoggingConfiguration", {}).get("DestinationBucketName") == {"Ref": access_logs_id}
    }


def _access_logs(template: dict) -> tuple[str, str]:
    """Return (bucket, its auto-delete custom resource) logical IDs of the access-log bucket."""
    (bucket,) = [k for k in resources_of(template, "AWS::S3::Bucket") if k.startswith("AccessLogs")]
    (custom,) = [
        k for k, r in resources_of(template, AUTO_DELETE).items() if r["Properties"]["BucketName"] == {"Ref": bucket}
    ]
    return bucket, custom


@pytest.mark.parametrize("configuration", ["dev", "s3-dags"])
def test_logged_buckets_are_gone_before_the_access_log_bucket_is_emptied(synth, configuration):
    """CloudFormation deletes a resource before what it depends on: the auto-delete resource of
    each bucket that logs into the access-log bucket depends on the access-log bucket's, so that
    bucket is emptied first and its last access logs cannot land after the access-log bucket was
    emptied. (Template.from_stack also checks the template has no dependency cycle.)"""
    template = synth(configuration).template("cluster").to_json()
    access_logs, emptier = _access_logs(template)
    logged = _logged_buckets(template, access_logs)
    # task logs, the ECS jobs' data bucket and the DAG bucket (in every configuration, so that
    # switching dag_bundle neither deletes it nor removes its export)
    assert len(logged) == 3
    emptiers = resources_of(template, AUTO_DELETE)
    for logical in logged:
        (own,) = [k for k, r in emptiers.items() if r["Properties"]["BucketName"] == {"Ref": logical}]
        assert emptier in emptiers[own].get("DependsOn", []), logical
    assert not set(emptiers[emptier].get("DependsOn", [])) & {*logged, *emptiers}


def test_prod_retains_the_buckets_and_adds_no_order(prod):
    template = prod.template("cluster").to_json()
    assert resources_of(template, AUTO_DELETE) == {}
    for bucket in resources_of(template, "AWS::S3::Bucket").values():
        assert bucket["DeletionPolicy"] == "Retain"
        assert not any(d.startswith("AccessLogs") for d in bucket.get("DependsOn", []))


def test_the_load_balancer_that_logs_into_the_bucket_is_deleted_first(dev):
    """The ALB (Airflow stack) writes access logs to the cluster stack's bucket: its stack depends
    on the cluster stack, so cdk destroy deletes it first."""
    assert dev.stacks["cluster"] in dev.stacks["airflow"].dependencies


def test_the_auto_delete_handler_denies_writes_before_emptying(dev):
    """What stops late access logs: the handler CDK stages for auto-deleted buckets adds a
    bucket-policy Deny of s3:PutObject for everyone before it deletes the objects (read from
    the staged handler, so a CDK upgrade that drops it fails here)."""
    from pathlib import Path

    template = dev.template("cluster").to_json()
    (handler,) = [r for k, r in template["Resources"].items()
                  if k.startswith("CustomS3AutoDeleteObjectsCustomResourceProviderHandler")]
    asset = Path(dev.assembly.directory) / f"asset.{handler['Properties']['Code']['S3Key'].removesuffix('.zip')}"
    code = (asset / "index.js").read_text()
    assert 'Principal:"*",Effect:"Deny",Action:["s3:PutObject"]' in code
    deny = re.search(r'async function (\w+)\(t\)\{(?:(?!async function).)*?Effect:"Deny",Action:\["s3:PutObject"\]', code).group(1)
    empty = re.search(r"async function (\w+)\(t\)\{let e;do\{e=await c\.listObjectVersions", code).group(1)
    assert f"await {deny}(t),await {empty}(t)" in code  # on Delete: deny, then empty
