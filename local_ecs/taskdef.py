"""ECS task definitions as the runner reads them, and how one container becomes ``podman run``.

A task definition comes either from a template (CloudFormation's PascalCase properties, resolved
by :mod:`local_ecs.assembly`) or from the ECS API (camelCase, what RunTask launched in moto);
:func:`from_cloudformation` turns the first into the second, so one parser reads both.

ECS semantics followed (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html):
``entryPoint`` and ``command`` replace the image's; ``environment`` then ``secrets`` (read as the
execution role); ``user``; ``readonlyRootFilesystem`` (with no tmpfs added: Fargate adds none);
task ``volumes`` mounted by ``mountPoints`` (a fresh volume per task, seeded with the image's
content at that path, as Fargate seeds task storage from a Dockerfile VOLUME); ``dependsOn``
(START, COMPLETE, SUCCESS, HEALTHY); ``essential``; ``healthCheck`` (interval, timeout, retries,
startPeriod; defaults 30 s, 5 s, 3, 0); ``portMappings``; ``cpu``/``memory`` as limits (the
container's own, else the task's); ``stopTimeout`` (Fargate default 30 s).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

#: ECS defaults (seconds) of a container health check and of stopTimeout on Fargate.
HEALTH_CHECK_DEFAULTS = {"interval": 30, "timeout": 5, "retries": 3, "startPeriod": 0}
DEFAULT_STOP_TIMEOUT = 30
#: Keys whose values are maps of user-chosen names (never re-cased).
_OPAQUE_KEYS = {"Options", "DockerLabels", "SystemControls", "SecretOptions", "FirelensConfiguration"}


def _camel(key: str) -> str:
    return key[:1].lower() + key[1:]


def from_cloudformation(properties: Any) -> Any:
    """Return resolved ``AWS::ECS::TaskDefinition`` properties in the ECS API's camelCase
    (``ContainerDefinitions`` -> ``containerDefinitions``, ``ReadonlyRootFilesystem`` ->
    ``readonlyRootFilesystem``); values of option maps (log options, labels) are kept."""
    if isinstance(properties, list):
        return [from_cloudformation(item) for item in properties]
    if isinstance(properties, dict):
        return {
            _camel(key): (value if key in _OPAQUE_KEYS else from_cloudformation(value))
            for key, value in properties.items()
        }
    return properties


@dataclass(frozen=True)
class HealthCheck:
    """A container health check with ECS's parameters (seconds)."""

    command: list[str]
    interval: int = 30
    timeout: int = 5
    retries: int = 3
    start_period: int = 0

    @classmethod
    def parse(cls, check: dict) -> "HealthCheck":
        values = {**HEALTH_CHECK_DEFAULTS, **check}
        return cls(list(check["command"]), int(values["interval"]), int(values["timeout"]),
                   int(values["retries"]), int(values["startPeriod"]))

    def podman_command(self) -> str:
        """Return ``--health-cmd``'s value: a shell string for CMD-SHELL, a JSON array for CMD."""
        kind, *args = self.command
        if kind == "CMD-SHELL":
            return " ".join(args)
        if kind == "CMD":
            return json.dumps(args)
        raise ValueError(f"health check command must start with CMD or CMD-SHELL, not {kind!r}")


@dataclass(frozen=True)
class ContainerSpec:
    """One container definition (ECS API form) plus what the task gives it."""

    name: str
    image: str
    essential: bool = True
    command: list[str] | None = None
    entry_point: list[str] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)  # env name -> valueFrom
    user: str | None = None
    read_only_root: bool = False
    mount_points: list[tuple[str, str, bool]] = field(default_factory=list)  # (volume, path, read-only)
    depends_on: list[tuple[str, str]] = field(default_factory=list)  # (container, condition)
    health_check: HealthCheck | None = None
    ports: list[int] = field(default_factory=list)
    cpu: int | None = None  # CPU units (1024 = 1 vCPU)
    memory: int | None = None  # MiB, hard limit
    stop_timeout: int = DEFAULT_STOP_TIMEOUT
    working_directory: str | None = None

    @classmethod
    def parse(cls, definition: dict) -> "ContainerSpec":
        """Parse an ECS API container definition (camelCase)."""
        return cls(
            name=definition["name"],
            image=definition["image"],
            essential=definition.get("essential", True),
            command=definition.get("command"),
            entry_point=definition.get("entryPoint"),
            environment={item["name"]: str(item["value"]) for item in definition.get("environment") or []},
            secrets={item["name"]: item["valueFrom"] for item in definition.get("secrets") or []},
            user=definition.get("user"),
            read_only_root=bool(definition.get("readonlyRootFilesystem", False)),
            mount_points=[(m["sourceVolume"], m["containerPath"], bool(m.get("readOnly", False)))
                          for m in definition.get("mountPoints") or []],
            depends_on=[(d["containerName"], d["condition"]) for d in definition.get("dependsOn") or []],
            health_check=HealthCheck.parse(definition["healthCheck"]) if definition.get("healthCheck") else None,
            ports=[int(p["containerPort"]) for p in definition.get("portMappings") or []],
            cpu=int(definition["cpu"]) if definition.get("cpu") else None,
            memory=int(definition["memory"]) if definition.get("memory") else None,
            stop_timeout=int(definition.get("stopTimeout") or DEFAULT_STOP_TIMEOUT),
            working_directory=definition.get("workingDirectory"),
        )


@dataclass(frozen=True)
class TaskSpec:
    """A task definition (ECS API form): family, task-level cpu (units) and memory (MiB), roles,
    volume names, containers in definition order."""

    family: str
    cpu: int | None
    memory: int | None
    task_role_arn: str | None
    execution_role_arn: str | None
    volumes: list[str]
    containers: list[ContainerSpec]

    @classmethod
    def parse(cls, definition: dict) -> "TaskSpec":
        """Parse an ECS API task definition (``describe_task_definition()['taskDefinition']``
        or :func:`from_cloudformation` output).

        :raises ValueError: for a dependsOn naming no container of the task, or a mount point
            naming no volume.
        """
        containers = [ContainerSpec.parse(c) for c in definition["containerDefinitions"]]
        volumes = [v["name"] for v in definition.get("volumes") or []]
        names = {c.name for c in containers}
        for container in containers:
            for other, condition in container.depends_on:
                if other not in names or condition not in ("START", "COMPLETE", "SUCCESS", "HEALTHY"):
                    raise ValueError(f"container {container.name}: dependsOn {other} {condition} is not valid")
            for volume, _, _ in container.mount_points:
                if volume not in volumes:
                    raise ValueError(f"container {container.name} mounts volume {volume}, which the task does not define")
        return cls(
            family=definition.get("family", ""),
            cpu=int(definition["cpu"]) if definition.get("cpu") else None,
            memory=int(definition["memory"]) if definition.get("memory") else None,
            task_role_arn=definition.get("taskRoleArn"),
            execution_role_arn=definition.get("executionRoleArn"),
            volumes=volumes,
            containers=containers,
        )

    def with_overrides(self, overrides: dict | None) -> "TaskSpec":
        """Return this task with RunTask ``overrides`` applied (containerOverrides' command,
        environment (merged), cpu, memory; the task's cpu, memory and taskRoleArn)."""
        overrides = overrides or {}
        by_name = {o.get("name"): o for o in overrides.get("containerOverrides") or []}
        containers = []
        for container in self.containers:
            override = by_name.get(container.name) or {}
            env = dict(container.environment)
            env.update({item["name"]: str(item["value"]) for item in override.get("environment") or []})
            containers.append(
                ContainerSpec(**{
                    **container.__dict__,
                    "command": override.get("command") or container.command,
                    "environment": env,
                    "cpu": int(override["cpu"]) if override.get("cpu") else container.cpu,
                    "memory": int(override["memory"]) if override.get("memory") else container.memory,
                })
            )
        return TaskSpec(
            family=self.family,
            cpu=int(overrides["cpu"]) if overrides.get("cpu") else self.cpu,
            memory=int(overrides["memory"]) if overrides.get("memory") else self.memory,
            task_role_arn=overrides.get("taskRoleArn") or self.task_role_arn,
            execution_role_arn=overrides.get("executionRoleArn") or self.execution_role_arn,
            volumes=self.volumes,
            containers=containers,
        )

    def start_order(self) -> list[ContainerSpec]:
        """Containers in an order where each comes after those it depends on.

        :raises ValueError: for a dependency cycle.
        """
        ordered: list[ContainerSpec] = []
        remaining = list(self.containers)
        while remaining:
            ready = [c for c in remaining if all(d in {o.name for o in ordered} for d, _ in c.depends_on)]
            if not ready:
                raise ValueError(f"dependsOn cycle among {[c.name for c in remaining]}")
            ordered += ready
            remaining = [c for c in remaining if c not in ready]
        return ordered


#: Variables podman itself reads from its own environment (scratch files, config lookup, runtime
#: search): a container's values for them are passed inline (``--env NAME=VALUE``), never through
#: the podman process's environment. A container's ``TMPDIR=/opt/airflow/tmp`` there made podman
#: write its own temporary files in a host directory that does not exist.
PODMAN_PROCESS_VARIABLES = frozenset({
    "TMPDIR", "PATH", "HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "CONTAINERS_CONF",
    "CONTAINERS_STORAGE_CONF", "CONTAINERS_REGISTRIES_CONF", "REGISTRY_AUTH_FILE", "CONTAINER_HOST",
})


def split_environment(environment: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Split a container's environment into (inline, inherited): the :data:`PODMAN_PROCESS_VARIABLES`
    go on the command line, everything else (secrets included) through the podman process."""
    inline = {k: v for k, v in environment.items() if k in PODMAN_PROCESS_VARIABLES}
    return inline, {k: v for k, v in environment.items() if k not in PODMAN_PROCESS_VARIABLES}


def podman_run_args(
    container: ContainerSpec,
    task: TaskSpec,
    *,
    name: str,
    image: str,
    volume_names: dict[str, str],
    hosts: dict[str, str],
    env_names: list[str],
    labels: dict[str, str],
    env_inline: dict[str, str] | None = None,
    bind_mounts: dict[str, str] | None = None,
) -> list[str]:
    """Return ``podman run`` arguments that run ``container`` as ECS on Fargate would.

    :param name: the podman container name.
    :param image: the local image standing in for ``container.image``.
    :param volume_names: task volume -> podman named volume of this task.
    :param hosts: extra ``/etc/hosts`` entries (Cloud Map names -> address).
    :param env_names: names of the environment variables to pass; their values come from the
        podman process's environment (``--env NAME``), so secrets stay off the command line.
    :param labels: podman labels (to find and remove everything the runner started).
    :param env_inline: variables passed with their values (``--env NAME=VALUE``): the
        :data:`PODMAN_PROCESS_VARIABLES`, which must not reach the podman process itself.
    :param bind_mounts: host path (a directory or file) -> container path, mounted read-only over
        what the image holds there (``make local`` mounts ``dags/``, the git bundle rehearsal its
        git server's certificate; ECS has no such thing, the other rehearsals never use it).
    :returns: the argument list after ``podman``.
    """
    args = ["run", "--detach", "--pull=never", "--network=host", "--name", name]
    for key, value in sorted(labels.items()):
        args += ["--label", f"{key}={value}"]
    if container.read_only_root:
        # podman adds tmpfs at /run, /tmp, /var/tmp under --read-only; Fargate adds none.
        args += ["--read-only", "--read-only-tmpfs=false"]
    if container.user:
        args += ["--user", container.user]
    if container.working_directory:
        args += ["--workdir", container.working_directory]
    for env_name in env_names:
        args += ["--env", env_name]
    for env_name, value in sorted((env_inline or {}).items()):
        args += ["--env", f"{env_name}={value}"]
    for host, address in sorted(hosts.items()):
        args += ["--add-host", f"{host}:{address}"]
    for volume, path, read_only in container.mount_points:
        args += ["--volume", f"{volume_names[volume]}:{path}" + (":ro" if read_only else "")]
    for host_path, path in sorted((bind_mounts or {}).items()):
        args += ["--volume", f"{host_path}:{path}:ro"]
    cpu = container.cpu or task.cpu
    memory = container.memory or task.memory
    if cpu:
        args += ["--cpus", f"{cpu / 1024:g}"]
    if memory:
        args += ["--memory", f"{memory}m"]
    if container.health_check:
        check = container.health_check
        # ECS's startPeriod and retries are applied by the runner (podman healthcheck run per
        # interval); podman reports each single result.
        args += ["--health-cmd", check.podman_command(), "--health-timeout", f"{check.timeout}s",
                 "--health-retries", "1", "--health-start-period", "0s", "--health-interval", "disable"]
    for port in container.ports:
        args += ["--expose", str(port)]
    args += ["--stop-timeout", str(container.stop_timeout)]
    if container.entry_point is not None:
        args += ["--entrypoint", json.dumps(container.entry_point)]
    args.append(image)
    args += list(container.command or [])
    return args
