"""What the Airflow image runs as and listens on: facts of ``docker/Dockerfile`` (``FROM
apache/airflow``) that the task definitions, the load balancer and the rehearsal share."""

from __future__ import annotations

#: The image's non-root user: apache/airflow's ``airflow`` user, UID 50000, GID 0 (``user:group``,
#: as a task definition's ``user`` and ``podman exec --user`` take it).
CONTAINER_USER = "50000:0"
#: Port of ``airflow api-server`` (UI, REST API and the Execution API under /execution/).
API_SERVER_PORT = 8080
