"""S3 buckets with the settings every bucket of this app shares."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from constructs_lib import nag

#: Key prefix of the remote task logs in the task-log bucket (``[logging] remote_base_log_folder``
#: is ``s3://<bucket>/task-logs``).
TASK_LOGS_PREFIX = "task-logs/"


def secure_bucket(
    scope: Construct,
    construct_id: str,
    *,
    retain: bool,
    expire_after_days: int | None,
    server_access_logs: s3.IBucket | None,
    server_access_logs_prefix: str | None = None,
    versioned: bool = True,
) -> s3.Bucket:
    """Create a private bucket: public access blocked, TLS enforced, SSE-S3, owner-enforced ACLs.

    :param scope: parent construct.
    :param construct_id: construct ID (a PascalCase noun, e.g. ``TaskLogs``).
    :param retain: keep the bucket and its objects when the stack is deleted; otherwise the
        bucket is emptied and deleted with the stack.
    :param expire_after_days: lifecycle rule deleting current objects after this many days;
        None keeps them. Noncurrent versions always expire after 30 days and incomplete
        multipart uploads after 7.
    :param server_access_logs: bucket receiving S3 server access logs, or None (only for the
        access-log bucket itself).
    :param server_access_logs_prefix: key prefix of those logs.
    :param versioned: keep object versions (on for buckets holding data).
    :returns: the bucket.
    """
    rules = [
        s3.LifecycleRule(
            id="AbortIncompleteUploads", abort_incomplete_multipart_upload_after=Duration.days(7)
        ),
    ]
    if versioned:
        rules.append(
            s3.LifecycleRule(
                id="ExpireNoncurrentVersions", noncurrent_version_expiration=Duration.days(30)
            )
        )
    if expire_after_days is not None:
        rules.append(s3.LifecycleRule(id="ExpireObjects", expiration=Duration.days(expire_after_days)))
    bucket = s3.Bucket(
        scope,
        construct_id,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        versioned=versioned,
        lifecycle_rules=rules,
        server_access_logs_bucket=server_access_logs,
        server_access_logs_prefix=server_access_logs_prefix,
        removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
        auto_delete_objects=not retain,
    )
    empty_after_logged_buckets(bucket, server_access_logs)
    return bucket


#: The construct ID CDK gives a bucket's ``auto_delete_objects`` custom resource.
AUTO_DELETE_ID = "AutoDeleteObjectsCustomResource"


def empty_after_logged_buckets(bucket: s3.IBucket, access_logs: s3.IBucket | None) -> None:
    """Make CloudFormation empty ``bucket`` before it empties ``access_logs`` (both auto-deleted).

    What keeps late logs out of an emptied access-log bucket is CDK's auto-delete handler
    (aws-cdk-lib 2.275): before emptying, it adds a bucket-policy statement denying
    ``s3:PutObject`` to every principal, and the bucket policy (the log delivery's only
    permission; ACLs are disabled) is deleted after it. The handler only logs and carries on when
    it cannot set that statement; for that case this order keeps the requests that make the last
    access logs (emptying ``bucket``) before the access-log bucket is emptied: CloudFormation
    deletes a resource before what it depends on, so ``bucket``'s auto-delete resource depends on
    the access-log bucket's. (The bucket itself cannot: the access-log bucket's policy names it.)
    No-op when either bucket is retained or ``access_logs`` is in another stack.
    """
    if access_logs is None:
        return
    access_logs_emptier = access_logs.node.try_find_child(AUTO_DELETE_ID)
    emptier = bucket.node.try_find_child(AUTO_DELETE_ID)
    if access_logs_emptier is not None and emptier is not None:
        emptier.node.add_dependency(access_logs_emptier)


def grant_task_logs(bucket: s3.IBucket, role: iam.IRole, *, write: bool) -> None:
    """Let ``role`` read, and with ``write`` also write, the task logs under
    :data:`TASK_LOGS_PREFIX`; nobody is granted a delete (objects go by lifecycle rule only).

    What the amazon provider's S3 log handler calls (provider 9.39.0,
    ``airflow/providers/amazon/aws/log/s3_task_handler.py``):

    - reading a log (api-server): ``ListObjectsV2`` with the log's prefix (``s3:ListBucket``), then
      ``GetObject`` (``s3:GetObject``);
    - uploading a log (workers, triggerer): ``HeadObject`` (``check_for_key``; S3 authorizes it as
      ``s3:GetObject`` and answers a missing key with 404 only to a caller with ``s3:ListBucket``,
      403 otherwise, which fails the upload), ``GetObject`` of an existing log to append to it,
      then ``PutObject`` (``s3:PutObject``).

    ``s3:ListBucket`` is on the bucket (key names only: the bucket holds nothing but task logs);
    object actions only under the prefix. No ``s3:DeleteObject*``, ``s3:PutObjectLegalHold``,
    ``s3:PutObjectRetention`` or tagging: what ``bucket.grant_read_write`` would add.
    Actions: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html

    :param bucket: the task-log bucket.
    :param role: the grantee (a task role).
    :param write: also ``s3:PutObject``.
    """
    role.add_to_principal_policy(
        iam.PolicyStatement(sid="ListTaskLogs", actions=["s3:ListBucket"], resources=[bucket.bucket_arn])
    )
    nag.add_to_principal_policy(
        role,
        iam.PolicyStatement(
            sid="WriteTaskLogs" if write else "ReadTaskLogs",
            actions=["s3:GetObject", "s3:PutObject"] if write else ["s3:GetObject"],
            resources=[bucket.arn_for_objects(f"{TASK_LOGS_PREFIX}*")],
        ),
        "Task logs: s3:GetObject (and s3:PutObject for the writers) only under task-logs/, never a "
        "delete; object keys carry DAG, run and task IDs known only at run time.",
    )
