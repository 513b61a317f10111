"""Stand-ins for ECS (moto made as strict as ECS) and PostgreSQL, shared by every harness that
runs the executor or the deployment without AWS: the end-to-end tests (``tests/e2e``), the
executor's tests, the benchmark (``bench/``) and the local ECS runner (``local_ecs``, the
rehearsal and ``make local``).

``standins.moto_ecs``: where moto's ECS is more lenient than ECS, made as strict as ECS.
``standins.postgres``: throwaway PostgreSQL servers (plain, or TLS-only as RDS enforces it).
"""
