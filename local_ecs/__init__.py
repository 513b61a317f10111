"""Run the synthesized deployment on one machine, as ECS would: podman containers from the cloud
assembly's task definitions, moto for AWS with IAM enforced, PostgreSQL with TLS only.

Used by the rehearsal tests (``tests/rehearsal``), ``make rehearsal``, ``make local`` and
``python -m local_ecs``. See docs/rehearsal.md.
"""
