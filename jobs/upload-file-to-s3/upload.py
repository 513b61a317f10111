"""The example ECS job: write one text file to ``s3://$DATA_BUCKET/$OBJECT_KEY``.

The seed's "upload a file to S3" sample, without placeholders: the DAG
(``dags/example_ecs_job.py``) passes the bucket and key as container environment overrides, and
the job's task role may write only under the prefixes its configuration lists
(``jobs.upload-file-to-s3.s3_write_prefixes``, ``uploads/`` by default).
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone


def upload(s3, bucket: str, key: str, body: str) -> str:
    """Put ``body`` (UTF-8 text) at ``s3://bucket/key``; return the object's URI."""
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode("utf-8"), ContentType="text/plain")
    return f"s3://{bucket}/{key}"


def main(environ=os.environ, s3=None) -> int:
    """Read DATA_BUCKET and OBJECT_KEY from ``environ`` and upload with ``s3`` (a boto3 S3
    client; by default one with the task role's credentials). Exit code 0 on success, 2 when a
    variable is missing."""
    missing = [name for name in ("DATA_BUCKET", "OBJECT_KEY") if not environ.get(name)]
    if missing:
        print(f"missing environment variables: {', '.join(missing)}", file=sys.stderr)
        return 2
    body = f"Hello from an ECS job at {datetime.now(timezone.utc).isoformat()}\n"
    if s3 is None:
        import boto3

        s3 = boto3.client("s3")
    uri = upload(s3, environ["DATA_BUCKET"], environ["OBJECT_KEY"], body)
    print(f"uploaded {uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
