"""The rehearsal: the synthesized deployment started and used on one machine, as a user would.

:class:`LocalDeployment` brings up what ``cdk deploy --all`` would: the images of the assembly
(podman), PostgreSQL with TLS only at the DB secret's host and port, moto with the templates'
resources and IAM enforced, every ECS service of the Airflow stack as a task of its task
definition, and the ECS stand-in that turns the scheduler's RunTask calls into worker containers.
The Execution API URL the template writes (the api-server's Cloud Map name) resolves to the
api-server through ``--add-host``; the UI URL is the template's output.

:func:`rehearse` then plays the scenario of docs/rehearsal.md: migrations, services healthy by
their own health checks, log in with the admin password from its secret, trigger
``example_pipeline`` through the REST API, wait for it through the async ``/wait`` endpoint,
read the task logs back through the REST API from S3, optionally open a task's log page in a
real browser, run the access probe when the image holds it (:mod:`local_ecs.access_probe`),
measure each worker's start overhead (:func:`worker_start_overhead`), stop every service with
SIGTERM, and check that nothing is left running. It returns the report that
``.rehearsal/report.json`` holds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import secrets
import shutil
import time
from pathlib import Path

from cloud_assembly.airflow_image import CONTAINER_USER
from local_ecs import access_probe
from local_ecs.assembly import CloudAssembly, StandIns
from local_ecs.browser import check_task_page
from local_ecs.load_balancer import ListenerStandIn, https_domain, listener_rules
from local_ecs.aws import AwsStandIn
from standins.postgres import TlsOnlyPostgres, free_port
from standins.tls import self_signed_certificate
from local_ecs.rest import RestClient
from local_ecs.rest import http as _http
from local_ecs.runner import EcsStandIn, LocalTask, Runner, TaskFailed
from local_ecs.taskdef import TaskSpec, from_cloudformation

log = logging.getLogger(__name__)

DAG_ID = "example_pipeline"
#: What the ``load`` task's log holds for the example DAG's input (1..5 squared, summed).
EXPECTED_LOG_LINE = "Returned value was: 55"
#: The stand-in's address of every Cloud Map name and of the load balancer: containers share
#: the host's network.
LOCAL_ADDRESS = "127.0.0.1"

#: A CDK image asset's hash, the tag of its ECR URI in a template.
_ASSET_HASH = re.compile(r"[0-9a-f]{64}")


class RehearsalFailed(RuntimeError):
    """A step of the scenario failed; the message says which and what was seen."""


class LocalDeployment:
    """Everything of one synthesized app running locally (see the module docstring).

    :param cdk_out: the cloud assembly directory.
    :param work_dir: the run's directory (container logs, PostgreSQL data).
    :param max_workers: worker tasks running at once (the rest wait in PROVISIONING).
    :param build_images: ``cdk_out -> {asset hash: local tag}`` (default: build with podman).
    :param strict_health_timeouts: see :class:`~local_ecs.runner.LocalTask`; off by default,
        because the build machines share 2 cores among many processes: checks slower than their
        timeout are then reported (``health_checks_over_timeout``), not failed.
    :param dags_mount: ``make local`` only: a host folder mounted read-only over the image's DAG
        folder (the path of the template's ``LocalDagBundle``) in every container, services and
        workers, with the dag-processor rescanning it every :data:`RELOAD_SECONDS`, so an edited
        or new DAG runs without a rebuild.
    :param task_hostnames: give every task its own host name (its task ID), as every Fargate
        task has; the upgrade and image-rollout rehearsals need it, because two tasks of one
        service then run side by side and ``airflow jobs check --local`` finds a job by host name.
    :raises RehearsalFailed: ``dags_mount`` with a deployment whose DAG bundle is not a folder
        of the image (``dag_bundle=s3``).

    Services are tracked as ECS tracks them: :attr:`services` maps a running task's key to its
    :class:`LocalTask` (the first task of a service is keyed by the service's logical ID),
    :attr:`service_of` that key to the service, :attr:`service_specs` each service to the task
    definition its next task starts from; :meth:`update` moves to another synthesis of the app,
    :meth:`roll_service` and :meth:`scale_service` replace and count tasks as ECS would.
    """

    #: ``make local``'s rescan period of the mounted DAG folder (seconds): ``[dag_processor]
    #: refresh_interval`` (new files) and ``min_file_process_interval`` (changed files), whose
    #: defaults (300 s and 30 s, Airflow's configuration reference) suit a deployment, not an edit.
    RELOAD_SECONDS = 2

    def __init__(self, cdk_out: Path, work_dir: Path, *, max_workers: int = 3, build_images=None, podman=None,
                 ui_port: int | None = None, strict_health_timeouts: bool = False, dags_mount: Path | None = None,
                 task_hostnames: bool = False):
        self.strict_health_timeouts = strict_health_timeouts
        self.task_hostnames = task_hostnames
        self.service_specs: dict[str, TaskSpec] = {}
        self.service_of: dict[str, str] = {}
        self.service_settings: dict[str, dict] = {}
        self.retired: list[LocalTask] = []
        self._serial = 0
        self.assembly = CloudAssembly(cdk_out)
        self.cdk_out = Path(cdk_out)
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.run_id = "rh" + secrets.token_hex(3)
        self.max_workers = max_workers
        self._build_images = build_images
        self.load_balancer_port = ui_port or free_port()
        self.stand_ins = StandIns(database_port=free_port(),
                                  load_balancer_dns=f"{LOCAL_ADDRESS}:{self.load_balancer_port}")
        self.load_balancer: ListenerStandIn | None = None
        #: ``domain_name`` (the HTTPS listener's certificate's), None without an HTTPS listener.
        self.ui_domain = https_domain(self.assembly)
        #: With ``domain_name``: the port-80 listener (its redirect to HTTPS), on :attr:`http_redirect_port`.
        self.http_redirect: ListenerStandIn | None = None
        self.http_redirect_port: int | None = None
        #: With ``domain_name``: the certificate the HTTPS listener stand-in serves (PEM; its own CA).
        self.ui_certificate: Path | None = None
        self.aws = AwsStandIn(self.assembly, self.stand_ins)
        self.postgres: TlsOnlyPostgres | None = None
        self.runner = Runner(self.run_id, self.work_dir / "containers", podman=podman)
        self.services: dict[str, LocalTask] = {}
        self.ecs: EcsStandIn | None = None
        self.hosts: dict[str, str] = {}
        self.timings: dict[str, float] = {}
        self.image_tags: dict[str, str] = {}
        self.cdk_outs: list[Path] = [Path(cdk_out)]
        self.bind_mounts: dict[str, str] = {}
        self.reload_environment: dict[str, str] = {}
        if dags_mount is not None:
            self.bind_mounts = {str(Path(dags_mount).resolve()): self.local_dag_folder()}
            self.reload_environment = {"AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": str(self.RELOAD_SECONDS),
                                       "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": str(self.RELOAD_SECONDS)}

    # -- what the templates say -------------------------------------------------------------

    def _outputs(self, stack_id: str) -> dict[str, str]:
        stack = self.assembly.stack(stack_id)
        return {key: self.aws.resolver.resolve(stack_id, output["Value"])
                for key, output in stack.template.get("Outputs", {}).items()}

    def _cloud_map_names(self, stack_id: str, service: dict) -> list[str]:
        names = []
        for registry in service.get("Properties", {}).get("ServiceRegistries", []):
            arn = registry.get("RegistryArn", {})
            if not (isinstance(arn, dict) and "Fn::GetAtt" in arn):
                continue
            discovery = self.aws.resolver.resource(stack_id, arn["Fn::GetAtt"][0])["Properties"]
            namespace_id = self.aws.resolver.resolve(stack_id, discovery["NamespaceId"])
            for stack in self.assembly.stacks.values():
                for logical_id, namespace in stack.of_type("AWS::ServiceDiscovery::PrivateDnsNamespace").items():
                    if self.aws.resolver.resolve(stack.artifact_id, {"Ref": logical_id}) == namespace_id:
                        names.append(f"{discovery['Name']}.{self.aws.resolver.resolve(stack.artifact_id, namespace['Properties']['Name'])}")
        return names

    def rehearsed_image_assets(self, assembly: CloudAssembly | None = None) -> set[str]:
        """Return the hashes of the image assets the rehearsal runs: the images of the ECS services'
        task definitions and of the task definition families their executor settings name (the
        workers). Other task definitions (ECS jobs, whose images start from public base images no
        registry here serves) are not built; tests/e2e/test_ecs_job.py runs the example job."""
        assembly = assembly or self.assembly
        definitions = {}
        families = set()
        for stack in assembly.stacks.values():
            for logical_id, definition in stack.of_type("AWS::ECS::TaskDefinition").items():
                definitions[(stack.artifact_id, logical_id)] = definition["Properties"]
        run = set()
        for stack in assembly.stacks.values():
            for service in stack.of_type("AWS::ECS::Service").values():
                key = (stack.artifact_id, service["Properties"]["TaskDefinition"]["Ref"])
                run.add(key)
                for container in definitions[key]["ContainerDefinitions"]:
                    for variable in container.get("Environment", []):
                        if variable["Name"] == "AIRFLOW__AWS_ECS_EXECUTOR__TASK_DEFINITION":
                            value = variable["Value"]
                            if isinstance(value, dict) and set(value) == {"Ref"}:
                                # The revision ARN of a task definition in the same stack.
                                run.add((stack.artifact_id, value["Ref"]))
                            else:
                                families.add(json.dumps(value))
        run |= {key for key, properties in definitions.items() if json.dumps(properties.get("Family")) in families}
        images = json.dumps([c["Image"] for key in run for c in definitions[key]["ContainerDefinitions"]])
        return set(_ASSET_HASH.findall(images))

    def executor_cluster(self, specs: dict[str, TaskSpec]) -> str:
        """Return the cluster the scheduler's executor launches workers in
        (``AIRFLOW__AWS_ECS_EXECUTOR__CLUSTER``; the assembly has other clusters, e.g. the ECS
        jobs')."""
        for spec in specs.values():
            for container in spec.containers:
                if "AIRFLOW__AWS_ECS_EXECUTOR__CLUSTER" in container.environment:
                    return container.environment["AIRFLOW__AWS_ECS_EXECUTOR__CLUSTER"]
        raise RehearsalFailed("no service sets AIRFLOW__AWS_ECS_EXECUTOR__CLUSTER: which cluster runs the workers?")

    def local_dag_folder(self) -> str:
        """Return the folder of the ``LocalDagBundle`` the templates configure
        (``AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST``).

        :raises RehearsalFailed: no container configures a local DAG bundle (``dag_bundle=s3``).
        """
        for stack in self.assembly.stacks.values():
            for definition in stack.of_type("AWS::ECS::TaskDefinition").values():
                for container in definition["Properties"]["ContainerDefinitions"]:
                    for variable in container.get("Environment", []):
                        if variable["Name"] != "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST":
                            continue
                        for bundle in json.loads(variable["Value"]):
                            if bundle.get("classpath", "").endswith(".LocalDagBundle"):
                                return bundle["kwargs"]["path"]
        raise RehearsalFailed("the DAG folder can be mounted only with dag_bundle=image (the templates configure "
                              "no LocalDagBundle); run make local without -c dag_bundle=s3")

    def service_definitions(self) -> dict[str, TaskSpec]:
        """Return ``{service logical ID: task definition}`` of every ECS service, and fill
        :attr:`hosts` with their Cloud Map names."""
        found = {}
        for stack in self.assembly.stacks.values():
            for logical_id, service in stack.of_type("AWS::ECS::Service").items():
                definition_ref = service["Properties"]["TaskDefinition"]
                definition = self.aws.resolver.properties(stack.artifact_id, definition_ref["Ref"])
                found[logical_id] = TaskSpec.parse(from_cloudformation(definition))
                for name in self._cloud_map_names(stack.artifact_id, service):
                    self.hosts[name] = LOCAL_ADDRESS
        return found

    def environment_for(self, task: TaskSpec, container) -> dict[str, str]:
        """A container's environment as ECS gives it: the definition's environment, its secrets
        read as the execution role, and (stand-in plumbing) the task role's principal and the
        moto endpoint instead of the ECS credentials endpoint, and the load balancer stand-in's
        address as the api-server's trusted proxy (``FORWARDED_ALLOW_IPS``, in AWS the load
        balancer's subnets)."""
        env = dict(container.environment)
        if container.secrets:
            if not task.execution_role_arn:
                raise RehearsalFailed(f"container {container.name} has secrets but its task has no execution role")
            execution = self.aws.principal_of_role(task.execution_role_arn)
            for name, value_from in container.secrets.items():
                env[name] = self.aws.read_secret(value_from, execution)
        if task.task_role_arn:
            env.update(self.aws.principal_of_role(task.task_role_arn).environment())
        env["AWS_ENDPOINT_URL"] = self.aws.url
        env["AWS_EC2_METADATA_DISABLED"] = "true"
        if "FORWARDED_ALLOW_IPS" in env:
            # The api-server trusts X-Forwarded-Proto/-For from the load balancer's subnets; the
            # load balancer stand-in connects from this address instead.
            env["FORWARDED_ALLOW_IPS"] = LOCAL_ADDRESS
        env.update(self.reload_environment)
        return env

    def _task(self, task_id: str, spec: TaskSpec) -> LocalTask:
        return LocalTask(task_id, spec, environment_for=self.environment_for, image_for=self.stand_ins.image,
                         hosts=self.hosts, runner=self.runner, strict_health_timeouts=self.strict_health_timeouts,
                         bind_mounts=self.bind_mounts, hostname=task_id if self.task_hostnames else None)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, dags_dir: Path | None = None) -> None:
        """Build the images, start PostgreSQL, moto and every service (not waiting for health)."""
        started = time.monotonic()
        if self._build_images is None:
            from local_ecs.images import build_assembly_images

            self.image_tags = build_assembly_images(self.cdk_out, only=self.rehearsed_image_assets())
        else:
            self.image_tags = self._build_images(self.cdk_out)
        self.stand_ins.images.update(self.image_tags)
        self.timings["images_seconds"] = time.monotonic() - started
        self.aws.start()
        self.aws.provision()
        self._start_postgres()
        if dags_dir is not None:
            self._upload_dags(dags_dir)
        self.before_services()
        self.aws.enforce_iam()
        self._start_load_balancer()
        specs = self.service_definitions()
        self.runner.start()
        self.ecs = EcsStandIn(self.aws, self.executor_cluster(specs), self._task, self.runner,
                              max_running=self.max_workers)
        self.ecs.start()
        self.service_settings = self._service_settings()
        for logical_id, spec in specs.items():
            self.service_specs[logical_id] = spec
            self._start_service_task(logical_id, key=logical_id)
        self.timings["start_seconds"] = time.monotonic() - started

    def _start_load_balancer(self) -> None:
        """The UI's listener on :attr:`load_balancer_port`: with ``domain_name`` the HTTPS listener,
        its certificate (ACM's) played by a self-signed one for the domain (:attr:`ui_certificate`),
        and the port-80 listener's redirect on :attr:`http_redirect_port`; else the HTTP listener."""
        rules, target_port = listener_rules(self.assembly, 443 if self.ui_domain else 80)
        tls = None
        if self.ui_domain is not None:
            tls = self_signed_certificate(self.work_dir / "tls", self.ui_domain, "load-balancer")
            self.ui_certificate = tls[0]
            self.http_redirect_port = free_port()
            self.http_redirect = ListenerStandIn(listener_rules(self.assembly, 80)[0], self.http_redirect_port,
                                                 f"{LOCAL_ADDRESS}:{target_port}")
            self.http_redirect.start()
        self.load_balancer = ListenerStandIn(rules, self.load_balancer_port, f"{LOCAL_ADDRESS}:{target_port}", tls=tls)
        self.load_balancer.start()

    def before_services(self) -> None:
        """Called by :meth:`start` once moto is provisioned, before IAM is enforced and any task
        starts: a scenario's subclass creates here what a user creates before a deploy (e.g. a
        secret the configuration names). Does nothing here."""

    # -- services as ECS runs them: counts, rollouts, another synthesis -------------------------

    def _service_settings(self) -> dict[str, dict]:
        """``{service logical ID: {"name", "desired", "minimum_healthy_percent", "maximum_percent"}}``
        from the templates (ECS's defaults, 100 and 200, where a template sets none)."""
        found = {}
        for stack in self.assembly.stacks.values():
            for logical_id, service in stack.of_type("AWS::ECS::Service").items():
                properties = service["Properties"]
                configuration = properties.get("DeploymentConfiguration", {})
                found[logical_id] = {
                    "desired": int(properties.get("DesiredCount", 1)),
                    "minimum_healthy_percent": int(configuration.get("MinimumHealthyPercent", 100)),
                    "maximum_percent": int(configuration.get("MaximumPercent", 200)),
                }
        return found

    def service_name(self, logical_id: str) -> str:
        """The service's component name: its main container's (``scheduler``, ``api-server``...)."""
        spec = self.service_specs[logical_id]
        return spec.containers[0].name if len(spec.containers) == 1 else _main_container(spec)

    def service_by_name(self, name: str) -> str:
        """The logical ID of the service whose component is ``name``.

        :raises KeyError: no such service.
        """
        for logical_id in self.service_specs:
            if self.service_name(logical_id) == name:
                return logical_id
        raise KeyError(f"no service {name!r}; the services are {sorted(map(self.service_name, self.service_specs))}")

    def tasks_of(self, logical_id: str) -> dict[str, LocalTask]:
        """The running tasks of a service, ``{key: task}``."""
        return {key: task for key, task in self.services.items() if self.service_of.get(key) == logical_id}

    def _start_service_task(self, logical_id: str, key: str | None = None) -> str:
        spec = self.service_specs[logical_id]
        self._serial += 1
        name = self.service_name(logical_id)
        task_id = name if key else f"{name}-{self._serial}"
        key = key or f"{logical_id}#{self._serial}"
        self.services[key] = self.runner.add(self._task(task_id, spec))
        self.service_of[key] = logical_id
        return key

    def _stop_service_tasks(self, keys: list[str], reason: str, timeout: float = 300) -> None:
        """Stop service tasks (SIGTERM, SIGKILL after stopTimeout) and wait until they ended."""
        tasks = [self.services.pop(key) for key in keys]
        self.retired.extend(tasks)
        for task in tasks:
            task.stop(reason)
        self.runner.wait(lambda: all(task.status == "STOPPED" for task in tasks), timeout,
                         f"{', '.join(t.task_id for t in tasks)} to stop", self.check)

    @staticmethod
    def task_healthy(task: LocalTask) -> bool:
        """ECS's view: RUNNING, and every container with a health check HEALTHY."""
        return task.status == "RUNNING" and all(run.health == "HEALTHY" for run in task.containers.values()
                                                if run.spec.health_check is not None)

    def _exclusive_port(self, logical_id: str) -> bool:
        """Whether the service's task listens on a port (on the host network two cannot)."""
        return any(container.ports for container in self.service_specs[logical_id].containers)

    def scale_service(self, logical_id: str, count: int, timeout: float = 1500, until: str = "healthy") -> None:
        """Set the service's desired count and start or stop tasks to match (new tasks from
        :attr:`service_specs`); returns when the stopped tasks ended and the new ones are
        ``healthy``, or (``until="running"``) when their main container runs, as ECS's
        ``runningCount`` counts them (health checks still to pass)."""
        self.service_settings[logical_id]["desired"] = count
        running = list(self.tasks_of(logical_id))
        if len(running) > count:
            self._stop_service_tasks(running[count:], "Scaled in by the service")
        started = [self._start_service_task(logical_id) for _ in range(count - len(running))]
        name = self.service_name(logical_id)

        def ready(task: LocalTask) -> bool:
            if until == "running":
                return task.containers[name].state == "RUNNING"
            return self.task_healthy(task)

        self.runner.wait(lambda: all(ready(self.services[key]) for key in started), timeout,
                         f"the new {name} tasks to be {until}", self.check)

    def roll_service(self, logical_id: str, timeout: float = 1500) -> list[str]:
        """Replace the service's tasks by tasks of :attr:`service_specs`, as an ECS rolling
        update does with the template's deployment configuration: at most ``maximum_percent`` of
        the desired count run, and a task is stopped only while at least
        ``minimum_healthy_percent`` stay healthy (Amazon ECS Developer Guide, "Deploy Amazon ECS
        services by replacing tasks"). A service that listens on a port is replaced stop-first:
        the stand-in's tasks share the host's network, where two cannot listen on one port
        (on Fargate each task has its own address), so there it is the upper bound of ECS's gap.

        :returns: the events in order (``start <task>``, ``healthy <task>``, ``stop <task>``).
        :raises RehearsalFailed: a new task failed (ECS's circuit breaker would roll back; the
            rehearsal reports it instead) or the rollout did not finish within ``timeout`` seconds.
        """
        settings = self.service_settings[logical_id]
        desired = settings["desired"]
        minimum = -(-desired * settings["minimum_healthy_percent"] // 100)
        maximum = desired * settings["maximum_percent"] // 100
        if self._exclusive_port(logical_id):
            minimum, maximum = 0, desired
        old, new, events = list(self.tasks_of(logical_id)), [], []
        deadline = time.monotonic() + timeout
        reported_healthy: set[str] = set()
        while old or len(new) < desired or not all(self.task_healthy(self.services[k]) for k in new):
            self.check()
            for key in new:
                if key not in reported_healthy and self.task_healthy(self.services[key]):
                    reported_healthy.add(key)
                    events.append(f"healthy {self.services[key].task_id}")
            healthy = [key for key in old + new if self.task_healthy(self.services[key])]
            stoppable = [key for key in old if len(healthy) - (key in healthy) >= minimum]
            if old and stoppable:
                key = stoppable[0]
                events.append(f"stop {self.services[key].task_id}")
                self._stop_service_tasks([key], "Stopped by a deployment (rolling update)")
                old.remove(key)
                continue
            if len(new) < desired and len(old) + len(new) < max(maximum, 1):
                key = self._start_service_task(logical_id)
                new.append(key)
                events.append(f"start {self.services[key].task_id}")
                continue
            if time.monotonic() > deadline:
                raise RehearsalFailed(f"the rollout of {self.service_name(logical_id)} did not finish in {timeout:.0f}s "
                                      f"(events: {events})")
            time.sleep(1)
        for key in new:
            if key not in reported_healthy:
                events.append(f"healthy {self.services[key].task_id}")
        return events

    def build_images(self, cdk_out: Path) -> dict[str, str]:
        """Build (or reuse) the images the synthesis ``cdk_out`` runs; ``{asset hash: local tag}``.
        Call it before an upgrade, as ``make publish`` builds the image before the deploy, so
        that :meth:`update` finds them built."""
        if self._build_images is not None:
            return self._build_images(Path(cdk_out))
        from local_ecs.images import build_assembly_images

        return build_assembly_images(cdk_out, only=self.rehearsed_image_assets(CloudAssembly(cdk_out)))

    def update(self, cdk_out: Path) -> dict[str, str]:
        """Move to another synthesis of the app, as ``cdk deploy`` does before ECS rolls the
        services: build its images, register its task definitions (new revisions; the workers'
        included, as the Airflow stack's update does), and make its
        services' task definitions the ones new tasks start from. Running tasks are untouched.

        :returns: ``{family: new revision ARN}``.
        :raises RehearsalFailed: the synthesis has other ECS services than the running one.
        """
        from local_ecs.assembly import Resolver

        self.assembly = CloudAssembly(cdk_out)
        self.cdk_out = Path(cdk_out)
        self.aws.assembly = self.assembly
        self.aws.resolver = Resolver(self.assembly, self.stand_ins)
        self.aws.number_task_definition_revisions()  # before anything resolves a Ref to one
        tags = self.build_images(self.cdk_out)
        self.image_tags.update(tags)
        self.stand_ins.images.update(tags)
        specs = self.service_definitions()
        if set(specs) != set(self.service_specs):
            raise RehearsalFailed(f"{cdk_out} has the services {sorted(specs)}, the deployment {sorted(self.service_specs)}")
        registered = self.aws.register_task_definitions()
        self.service_specs.update(specs)
        self.cdk_outs.append(self.cdk_out)
        return registered

    def deregister_previous_revisions(self, keep: dict[str, str]) -> list[str]:
        """Deregister every ACTIVE revision of the families in ``keep`` but the one kept
        (CloudFormation's clean-up of a replaced task definition): RunTask of them is then
        refused. Returns the deregistered ARNs."""
        ecs = self.aws.client("ecs")
        gone = []
        for family, arn in keep.items():
            for other in ecs.list_task_definitions(familyPrefix=family, status="ACTIVE")["taskDefinitionArns"]:
                if other != arn:
                    ecs.deregister_task_definition(taskDefinition=other)
                    gone.append(other)
        return gone

    def run_one_off(self, command: list[str], timeout: float = 1800, container: str = "db-migrate") -> tuple[int | None, str]:
        """Run ``command`` in a one-off task of the current api-server task definition's
        ``container`` (the init container that migrates: it has the DB settings and secrets),
        alone (no dependsOn, no health check), as ``airflow-ecs run`` starts a one-off task with a
        command override. Returns ``(exit code, log)``.

        :raises RehearsalFailed: it did not end within ``timeout`` seconds.
        """
        import dataclasses

        source = next(spec for spec in self.service_specs.values() if any(c.name == container for c in spec.containers))
        base = next(c for c in source.containers if c.name == container)
        one = dataclasses.replace(base, command=list(command), depends_on=[], health_check=None, essential=True)
        spec = dataclasses.replace(source, containers=[one])
        self._serial += 1
        task = self.runner.add(self._task(f"oneoff-{self._serial}", spec))
        self.runner.wait(lambda: task.status == "STOPPED", timeout, f"the one-off task {' '.join(command)}")
        run = task.containers[container]
        return run.exit_code, self.runner.logs(run.podman_name, lines=None)

    def _start_postgres(self) -> None:
        for stack in self.assembly.stacks.values():
            for logical_id, attachment in stack.of_type("AWS::SecretsManager::SecretTargetAttachment").items():
                arn = self.aws.resolver.resolve(stack.artifact_id, attachment["Properties"]["SecretId"])
                document = json.loads(self.aws.secret_values[arn])
                # A rehearsal interrupted before its stop() leaves its data directory behind.
                shutil.rmtree(self.work_dir / "postgres", ignore_errors=True)
                self.postgres = TlsOnlyPostgres(self.work_dir / "postgres", int(document["port"]))
                self.postgres.start(document["username"], document["password"], document["dbname"])
                self.db_credentials = document
                return
        raise RehearsalFailed("no RDS secret attachment in the assembly: where is the metadata DB?")

    def _upload_dags(self, dags_dir: Path) -> list[str]:
        """With ``dag_bundle=s3``: put the DAG files where the bundle config of the template says."""
        uploaded = []
        for stack in self.assembly.stacks.values():
            for logical_id, definition in stack.of_type("AWS::ECS::TaskDefinition").items():
                for container in self.aws.resolver.properties(stack.artifact_id, logical_id)["ContainerDefinitions"]:
                    env = {e["Name"]: e["Value"] for e in container.get("Environment", [])}
                    for bundle in json.loads(env.get("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", "[]")):
                        kwargs = bundle.get("kwargs", {})
                        if "bucket_name" in kwargs and not uploaded:
                            s3 = self.aws.client("s3")
                            for path in sorted(Path(dags_dir).glob("*.py")):
                                key = f"{kwargs.get('prefix', '').strip('/')}/{path.name}".lstrip("/")
                                s3.upload_file(str(path), kwargs["bucket_name"], key)
                                uploaded.append(f"s3://{kwargs['bucket_name']}/{key}")
        return uploaded

    #: Failed runner ticks in a row that stop the rehearsal (a podman that cannot start a
    #: container fails every tick; a transient glitch of a loaded machine fails one or two).
    RUNNER_ERRORS_TO_FAIL = 5

    def check(self) -> None:
        """Raise :class:`TaskFailed` if a service task failed (name, exit code, log tail), and
        :class:`RehearsalFailed` if the runner keeps failing to drive the containers (for
        example ``podman run`` refused), instead of waiting for a health that cannot come."""
        failed = self.runner.failed_ticks_in_a_row
        if failed >= self.RUNNER_ERRORS_TO_FAIL:
            raise RehearsalFailed(
                f"the runner failed {failed} times in a row driving the containers; the last: {self.runner.errors[-1]}"
            )
        for task in self.services.values():
            if task.failure is not None:
                raise task.failure
            if task.status == "STOPPED":
                raise RehearsalFailed(f"service task {task.task_id} stopped: {task.stopped_reason}")

    def wait_healthy(self, timeout: float = 600) -> None:
        """Wait until every service's containers with a health check are HEALTHY."""
        def healthy() -> bool:
            return all(run.health == "HEALTHY" for task in self.services.values() for run in task.containers.values()
                       if run.spec.health_check is not None)

        self.runner.wait(healthy, timeout, "every service to be healthy by its own health check", self.check)

    @property
    def ui_url(self) -> str:
        """The template's ``AirflowUiUrl``. With ``domain_name`` (``https://<domain>``) its host is
        the HTTPS listener stand-in's address, as the alias record resolves the name to the load
        balancer; clients name :attr:`ui_certificate` as the CA."""
        url = self._outputs("Airflow")["AirflowUiUrl"]
        if self.ui_domain is not None:
            url = url.replace(f"https://{self.ui_domain}", f"https://{LOCAL_ADDRESS}:{self.load_balancer_port}", 1)
        return url

    def admin_login(self) -> tuple[str, str]:
        """Return (user name, password): the template's outputs and the password's secret, read
        as the harness's administrator (as ``aws secretsmanager get-secret-value`` would)."""
        outputs = self._outputs("Airflow")
        password = self.aws.client("secretsmanager").get_secret_value(
            SecretId=outputs["AdminPasswordSecretArn"])["SecretString"]
        return outputs["AdminUsername"], password

    def container_name(self, component: str) -> str:
        for task in self.services.values():
            if component in task.containers:
                return task.containers[component].podman_name
        raise KeyError(component)

    def stop(self) -> list[str]:
        """Stop every task (SIGTERM within stopTimeout), remove every container and volume of
        the run, stop moto and PostgreSQL. Safe to call more than once.

        :returns: containers that were still there at cleanup (should be none).
        """
        left: list[str] = []
        with contextlib.suppress(Exception):
            self.runner.stop_all(timeout=150)
        with contextlib.suppress(Exception):
            left = self.runner.cleanup()
        if self.ecs:
            with contextlib.suppress(Exception):
                self.ecs.stop()
        for listener in (self.load_balancer, self.http_redirect):
            if listener is not None:
                with contextlib.suppress(Exception):
                    listener.stop()
        with contextlib.suppress(Exception):
            self.aws.stop()
        if self.postgres:
            self.postgres.stop()
        return left


def _main_container(spec: TaskSpec) -> str:
    essential = [c.name for c in spec.containers if c.essential]
    return essential[0] if essential else spec.containers[0].name


def _poll(predicate, timeout: float, check=None, interval: float = 2.0):
    """Return ``predicate()``'s first truthy value within ``timeout`` seconds, else its last
    value (the report records what was seen; the tests judge it)."""
    deadline = time.monotonic() + timeout
    while True:
        if check:
            check()
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def _wait_for(predicate, timeout: float, what: str, check=None, interval: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check:
            check()
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise RehearsalFailed(f"timed out after {timeout:.0f}s waiting for {what}")


def wait_parsed(client: RestClient, dag_id: str, timeout: float, check=None) -> None:
    """Wait until the dag-processor has parsed ``dag_id`` (``GET /api/v2/dags/<id>`` answers 200).

    :raises RehearsalFailed: not within ``timeout`` seconds.
    """
    _wait_for(lambda: client.get(f"/api/v2/dags/{dag_id}")[0] == 200, timeout,
              f"the dag-processor to parse {dag_id}", check)


def rehearse(cdk_out: Path, out_dir: Path, *, name: str = "default", dags_dir: Path | None = None,
             browser: bool = True, deployment: LocalDeployment | None = None, timeout: float = 900,
             healthy_timeout: float = 1500, browser_runs: int = 1) -> dict:
    """Run the scenario (module docstring) and return the report; always cleans up.

    :param cdk_out: the cloud assembly of the configuration to rehearse.
    :param out_dir: where the report, screenshot and container logs go.
    :param name: the configuration's name in the report (``default``, ``s3``, ``stock-executor``).
    :param dags_dir: DAG files to upload when the assembly uses ``dag_bundle=s3``.
    :param timeout: seconds for the DAG run; ``healthy_timeout``: for the services to be healthy
        (generous: on a shared 2-core machine one ``airflow jobs check`` took minutes).
    :param browser_runs: how many times the browser step runs, each in a fresh browser (the
        report's ``browser`` is the first, ``browser_runs`` all of them: a count of passes).
    :raises TaskFailed: a container exited non-zero where that stops its task (name, exit code,
        last log lines).
    :raises RehearsalFailed: a step failed.
    """
    started = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    deployment = deployment or LocalDeployment(cdk_out, out_dir / f"run-{name}")
    report: dict = {"configuration": name, "containers": [], "dag_run_state": None, "task_log_from_s3": False,
                    "iam_denials": [], "image_mib": None, "seconds": None}
    try:
        deployment.start(dags_dir=dags_dir)
        report["images"] = deployment.image_tags
        with contextlib.suppress(Exception):
            from local_ecs.images import image_size_mib

            report["image_mib"] = round(max(image_size_mib(tag) for tag in deployment.image_tags.values()))
        deployment.wait_healthy(timeout=healthy_timeout)
        report["healthy_after_seconds"] = round(time.monotonic() - started, 1)
        ui = deployment.ui_url
        username, password = deployment.admin_login()
        client = RestClient(ui, username, password)
        client.json("/api/v2/version")  # signs in
        report["ui_url"], report["login"] = ui, "ok"
        # The Execution API is for workers (Cloud Map, inside the VPC): refused through the load
        # balancer, served by the api-server itself.
        report["execution_api"] = {
            "through_load_balancer": _http("GET", f"{ui}/execution/health")[0],
            "on_the_api_server": _http("GET", f"http://{LOCAL_ADDRESS}:{deployment.load_balancer.target.split(':')[1]}"
                                              "/execution/health")[0],
        }

        wait_parsed(client, DAG_ID, 300, deployment.check)
        run_id = report["dag_run_id"] = client.trigger(DAG_ID)

        report["async_wait"] = _async_wait(deployment, client, run_id, timeout)
        report["dag_run_state"] = client.wait_for_run(DAG_ID, run_id, timeout, deployment.check)
        instances = client.task_instances(DAG_ID, run_id)
        report["task_instances"] = {f"{ti['task_id']}[{ti.get('map_index', -1)}]": ti["state"] for ti in instances}
        report["worker_tasks_launched"] = deployment.ecs.launched if deployment.ecs else 0
        load = next((ti for ti in instances if ti["task_id"] == "load"), None)
        if load:
            report.update(_task_log_from_s3(deployment, client, run_id, load))
            if browser:
                report.update(_browser_checks(ui, username, password, run_id, out_dir, name, browser_runs))
        runs = [(DAG_ID, run_id)]
        if access_probe.in_image(deployment):
            # One more DAG run: connections and variables from Secrets Manager, another
            # deployment's secret, a team queue's own task role (local_ecs/access_probe.py).
            report["access_probe"] = access_probe.run(deployment, client, timeout)
            runs.append((access_probe.DAG_ID, report["access_probe"]["dag_run_id"]))
        # A worker reports its task's state, then uploads the log and exits: let every worker end
        # on its own before the services stop (a scheduler stopping while one still runs may
        # stop it, as the stock executor does: SIGTERM, exit 143).
        services = {id(task) for task in deployment.services.values()}
        report["workers_exited_after_seconds"] = _wait_for(
            lambda: not [t for t in list(deployment.runner.tasks.values()) if id(t) not in services]
            and round(time.monotonic() - started, 1),
            180, "every worker container to exit", deployment.check)
        report["worker_start_overhead"] = worker_start_overhead(
            deployment, [ti for dag_id, dag_run_id in runs for ti in client.task_instances(dag_id, dag_run_id)])
        report["scratch"] = _scratch_checks(deployment)
    except Exception as error:
        report["error"] = str(error)
        if isinstance(error, TaskFailed):
            report["failed_container"] = {"name": error.container, "exit_code": error.exit_code,
                                          "log_tail": error.log_tail.splitlines()[-20:]}
        raise
    finally:
        _finish_report(report, deployment, out_dir, name, started)
    return report


def _async_wait(deployment: LocalDeployment, client: RestClient, run_id: str, timeout: float) -> dict:
    """The async path: ``GET .../dagRuns/<run>/wait`` streams the run's state from the async
    (asyncpg) engine until it ends. Returns ``status``, ``ok``, ``seconds``, ``last`` (the last
    state line or the body's end) and, when not ok, the api-server's last error lines."""
    wait_started = time.monotonic()
    status, body = client.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/wait?interval=2", timeout=timeout,
                              accept="application/x-ndjson")
    lines = [json.loads(line) for line in body.splitlines() if line.strip().startswith("{")] if status == 200 else []
    result = {"status": status, "ok": status == 200 and bool(lines) and lines[-1].get("state") in ("success", "failed"),
              "seconds": round(time.monotonic() - wait_started, 1), "last": lines[-1] if lines else body[-400:]}
    if not result["ok"]:
        api_log = deployment.runner.logs(deployment.container_name("api-server"), lines=400)
        result["api_server_log"] = [line for line in api_log.splitlines() if "sslmode" in line or "Error" in line][-5:]
    return result


def _task_log_from_s3(deployment: LocalDeployment, client: RestClient, run_id: str, load: dict) -> dict:
    """The ``load`` task's log read back through the REST API, which must come from S3. Returns
    the report's ``task_log_seconds_after_run``, ``task_log`` and ``task_log_from_s3``."""
    # The run is success as soon as the task reports it; the worker uploads its log to S3
    # just after. Wait for that object first, then for the REST API to serve the line:
    # with the worker's log server unreachable (as on Fargate), it can only come from S3.
    log_started = time.monotonic()
    s3_keys = _poll(lambda: _s3_log_keys(deployment, run_id, "load", EXPECTED_LOG_LINE), 120,
                    deployment.check) or []
    log_path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/load/logs/{load['try_number']}?full_content=true"
    answers: list[tuple[int, str]] = []

    def log_served() -> bool:
        answers.append(client.get(log_path))
        return answers[-1][0] == 200 and EXPECTED_LOG_LINE in answers[-1][1]

    _poll(log_served, 120, deployment.check, interval=3)
    status, body = answers[-1]
    found: dict = {"task_log_seconds_after_run": round(time.monotonic() - log_started, 1)}
    found["task_log"] = {"status": status, "has_expected_line": EXPECTED_LOG_LINE in body,
                         "rest_mentions_s3": "s3://" in body, "s3_objects_with_line": s3_keys,
                         "body_head": body[:600]}
    found["task_log_from_s3"] = status == 200 and EXPECTED_LOG_LINE in body and bool(s3_keys)
    return found


def _browser_checks(ui: str, username: str, password: str, run_id: str, out_dir: Path, name: str,
                    browser_runs: int) -> dict:
    """The browser step ``browser_runs`` times, each in a fresh browser: the report's ``browser``
    (the first) and ``browser_runs`` (a count of passes, failed steps, attempts, seconds)."""
    runs = [check_task_page(ui, username, password, f"/dags/{DAG_ID}/runs/{run_id}/tasks/load",
                            EXPECTED_LOG_LINE, out_dir / (f"screenshot-{name}.png" if i == 0
                                                          else f"screenshot-{name}-{i + 1}.png"))
            for i in range(browser_runs)]
    return {"browser": runs[0],
            "browser_runs": {"runs": len(runs), "passed": sum(1 for r in runs if r["ok"]),
                             "failed_steps": [r["step"] for r in runs if not r["ok"]],
                             "login_attempts": [r["login_attempts"] for r in runs],
                             "seconds": [r["seconds"] for r in runs]}}


def _finish_report(report: dict, deployment: LocalDeployment, out_dir: Path, name: str, started: float) -> None:
    """Stop and clean up the deployment, complete the report and write it (whatever failed)."""
    try:
        stop_started = time.monotonic()
        left = deployment.stop()
        report["stop_seconds"] = round(time.monotonic() - stop_started, 1)
        report["left_running"] = left
        tasks = list(deployment.services.values()) + [t for t in deployment.runner.finished
                                                       if t not in deployment.services.values()]
        report["containers"] = [{"task": task.task_id, **run.report()} for task in tasks for run in task.containers.values()]
        report["health_check_seconds"] = {run.spec.name: run.report()["health_check_seconds"]
                                          for task in deployment.services.values() for run in task.containers.values()
                                          if run.spec.health_check is not None}
        report["health_checks_over_timeout"] = {
            run.spec.name: run.over_timeout for task in deployment.services.values()
            for run in task.containers.values() if run.over_timeout}
        report["stopped_within_stop_timeout"] = all(
            run.stop_seconds is None or run.stop_seconds <= run.spec.stop_timeout + 2
            for task in deployment.services.values() for run in task.containers.values())
        report["iam_denials"] = sorted({d.line() for d in deployment.aws.denials})
        report["ecs_failures"] = deployment.ecs.failures if deployment.ecs else []
        report["runner_errors"] = deployment.runner.errors[-10:]
        report["timings"] = {k: round(v, 1) for k, v in deployment.timings.items()}
    except BaseException as error:  # noqa: B036 - the report must be written
        report["report_error"] = repr(error)
        log.exception("completing the report failed")
    finally:
        report["seconds"] = round(time.monotonic() - started, 1)
        (out_dir / f"report-{name}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")


def worker_start_overhead(deployment: LocalDeployment, task_instances: list[dict]) -> dict:
    """Per worker task: seconds from its container's start to its task instance's ``start_date``
    (:mod:`local_ecs.start_overhead`), for every worker the ECS stand-in launched (inspected by the
    runner before it removed them) and the REST API's ``task_instances`` of the runs.

    :returns: ``{"rows": [...], "summary": {count, median, min, max}, "workers_inspected": n,
        "workers_launched": n}``.
    """
    from local_ecs.start_overhead import summary, worker_start_overheads

    workers = list(deployment.ecs.tasks.values()) if deployment.ecs else []
    containers = [run.inspect for task in workers for run in task.containers.values() if run.inspect]
    rows = worker_start_overheads(containers, task_instances)
    return {"rows": rows, "summary": summary(rows), "workers_inspected": len(containers),
            "workers_launched": len(workers)}


def _s3_log_keys(deployment: LocalDeployment, run_id: str, task_id: str, line: str) -> list[str]:
    """Keys of task-log objects in S3 (the remote base log folder of the template) for
    ``task_id`` of ``run_id`` that contain ``line``."""
    (scheduler,) = [t for t in deployment.services.values() if "scheduler" in t.containers]
    folder = scheduler.containers["scheduler"].spec.environment["AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER"]
    bucket, _, prefix = folder.removeprefix("s3://").partition("/")
    s3 = deployment.aws.client("s3")
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            if f"run_id={run_id}" in key and f"task_id={task_id}" in key:
                if line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode(errors="replace"):
                    found.append(f"s3://{bucket}/{key}")
    return found


def _scratch_checks(deployment: LocalDeployment) -> dict:
    """Is /tmp writable by the airflow user (50000) in a running container, and is the root
    read-only there?"""
    name = deployment.container_name("scheduler")
    podman = deployment.runner.podman
    tmp = podman("exec", "--user", CONTAINER_USER, name, "sh", "-c", "touch /tmp/.rehearsal && rm /tmp/.rehearsal",
                 check=False, timeout=60)
    root = podman("exec", "--user", CONTAINER_USER, name, "sh", "-c", "touch /opt/airflow/.rehearsal",
                  check=False, timeout=60)
    return {"tmp_writable_by_50000": tmp.returncode == 0, "root_read_only": root.returncode != 0,
            "root_write_error": (root.stderr or "").strip()[-200:]}


#: The DAG :func:`rehearse_reload` writes into the mounted folder; ``VERSION`` is replaced per edit.
#: Two retries: on a machine whose cores are shared by many processes a worker's first call to
#: the Execution API was once seen to time out (ReadTimeout after 5 tries, load average 20).
RELOAD_PROBE_DAG = """import datetime

import pendulum
from airflow.sdk import dag, task


@dag(dag_id="reload_probe", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False,
     default_args={"retries": 2, "retry_delay": datetime.timedelta(seconds=5)})
def reload_probe():
    @task
    def version():
        return "VERSION"

    version()


reload_probe()
"""


def rehearse_reload(cdk_out: Path, out_dir: Path, dags_dir: Path, *, healthy_timeout: float = 1500,
                    reload_timeout: float = 300, run_timeout: float = 600) -> dict:
    """``make local``'s promise, measured: a new DAG file in the mounted folder is parsed and
    runs, then an edit of it is parsed and the next run executes the edited code, with no rebuild.

    :param dags_dir: the DAGs to start with; copied, the copy is mounted and edited.
    :returns: the report (also ``out_dir/report-local-reload.json``): ``reload`` holds per step
        (``new``, ``edit``) the seconds from the file's write to its parse, the run's state and the
        task's return value (the edit's version proves the worker ran the edited file).
    :raises RehearsalFailed: a step did not reach its state in time (the report says which).
    """
    from local_ecs.reload import DagFolderWatcher

    started = time.monotonic()
    out_dir = Path(out_dir)
    folder = out_dir / "local-reload-dags"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(dags_dir, folder, ignore=shutil.ignore_patterns("__pycache__"))
    folder.chmod(0o755)
    deployment = LocalDeployment(cdk_out, out_dir / "run-local-reload", dags_mount=folder)
    report: dict = {"configuration": "local-reload", "reload": {}, "iam_denials": []}
    try:
        deployment.start()
        deployment.wait_healthy(timeout=healthy_timeout)
        client = RestClient(deployment.ui_url, *deployment.admin_login())
        watcher = DagFolderWatcher(folder, deployment.local_dag_folder(), client.get)
        probe = folder / "reload_probe.py"
        for step in ("new", "edit"):
            probe.write_text(RELOAD_PROBE_DAG.replace("VERSION", step))
            seen = _wait_for(lambda: [r for r in watcher.poll() if r.file == probe.name], reload_timeout,
                             f"the {step} reload_probe.py to be parsed", deployment.check, interval=0.5)
            reload = seen[-1]
            if reload.error:
                raise RehearsalFailed(f"reload_probe.py ({step}) did not import: {reload.error[-500:]}")
            entry = report["reload"][step] = {"parse_seconds": reload.seconds}
            triggered = time.monotonic()
            run_id, entry["run_state"] = client.trigger_and_wait("reload_probe", run_timeout, deployment.check)
            entry["run_seconds"] = round(time.monotonic() - triggered, 1)
            status, body = client.get(f"/api/v2/dags/reload_probe/dagRuns/{run_id}/taskInstances/version/"
                                      "xcomEntries/return_value")
            entry["returned"] = json.loads(body).get("value") if status == 200 else f"HTTP {status}: {body[:200]}"
    except Exception as error:
        report["error"] = str(error)
        raise
    finally:
        report["left_running"] = deployment.stop()
        report["iam_denials"] = sorted({d.line() for d in deployment.aws.denials})
        report["seconds"] = round(time.monotonic() - started, 1)
        (out_dir / "report-local-reload.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report
