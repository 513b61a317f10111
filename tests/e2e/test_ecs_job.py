"""The example ECS-job DAG (``dags/example_ecs_job.py``) runs its job against moto with IAM
enforced, using only what the synthesized templates give it.

What is real: the DAG file and its ``EcsRunTaskOperator`` (amazon provider 9.39.0), its templates
rendered by Airflow's native Jinja environment with the Airflow variable that the synthesized
worker task definition carries (``AIRFLOW_VAR_ECS_JOB_UPLOAD_FILE_TO_S3``), the job's own code
(``jobs/upload-file-to-s3/upload.py``), and the synthesized policies: the worker's task role (the
operator's calls), the job's task role (its S3 write) and the job's execution role (its log
stream), each attached to a moto IAM user whose keys make the calls.

What plays AWS: moto, with IAM authorization on (``enable_iam_authentication``). moto authorizes
the action of every call, and for S3 also the resource down to the key; for ECS, CloudWatch Logs
and IAM it checks only the action and ignores conditions, so the principals get the synthesized
statements with their non-S3 resources widened to ``*`` and conditions dropped
(:func:`for_moto`). Those resources and conditions are asserted on the template instead
(``tests/cdk/test_jobs_and_scaling.py``). A thread plays Fargate (:class:`FakeJobRunner`): it
runs the job's code for each task moto holds, writes its output to the task's awslogs stream,
and stops the task with the job's exit code. moto stays strict: a running task's container has no
exit code, and a task stays RUNNING until the runner stops it.

The templates come from the JSON snapshots that ``tests/cdk/test_snapshots.py`` keeps equal to
a fresh synthesis.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import json
import os
import re
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-home-ecs-job-"))

import boto3  # noqa: E402
import pytest  # noqa: E402
from botocore.exceptions import ClientError, WaiterError  # noqa: E402
from moto import mock_aws  # noqa: E402
from moto.backends import get_backend  # noqa: E402
from moto.core.authorization import enable_iam_authentication  # noqa: E402
from moto.moto_api import state_manager  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SNAPSHOTS = PROJECT_ROOT / "tests" / "cdk" / "__snapshots__" / "test_snapshots"
ACCOUNT = "123456789012"  # moto's default account, the placeholder of the AWS docs
REGION = "eu-west-1"
JOB = "upload-file-to-s3"
VARIABLE_ENV = "AIRFLOW_VAR_ECS_JOB_UPLOAD_FILE_TO_S3"
RUN_ID = "manual__2026-11-25T01:00:00+00:00"

pytestmark = pytest.mark.e2e


def template(stack: str) -> dict:
    return json.loads((SNAPSHOTS / f"test_stack_matches_snapshot[{stack}].json").read_text())


def resource(tpl: dict, prefix: str, type_: str) -> tuple[str, dict]:
    """The one resource of ``type_`` whose logical ID starts with ``prefix``."""
    found = [(k, r) for k, r in tpl["Resources"].items() if k.startswith(prefix) and r["Type"] == type_]
    assert len(found) == 1, f"{prefix} {type_}: {[k for k, _ in found]}"
    return found[0]


class Resolver:
    """Fills CloudFormation references with the moto resources, as a deployment fills them."""

    def __init__(self):
        self.refs: dict[str, str] = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
        self.arns: dict[str, str] = {}
        self.imports: dict[str, object] = {}

    def __call__(self, value):
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "Ref" in value:
            return self.refs[value["Ref"]]
        if "Fn::GetAtt" in value:
            logical, attribute = value["Fn::GetAtt"]
            assert attribute == "Arn", value
            return self.arns[logical]
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(self(p) for p in parts)
        if "Fn::ImportValue" in value:
            name = value["Fn::ImportValue"]
            for fragment, physical in self.imports.items():
                if fragment in name:
                    return physical
            raise KeyError(f"no moto resource for import {name}")
        if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
            return re.sub(r"\$\{([^}]+)\}", lambda m: self.refs[m.group(1)], value["Fn::Sub"])
        return {k: self(v) for k, v in value.items()}


def for_moto(document: dict) -> dict:
    """The policy as moto can evaluate it: S3 statements unchanged (moto checks their resources
    down to the key), other statements with Resource ``*`` and no Condition (moto checks only
    their actions). See the module docstring."""
    document = copy.deepcopy(document)
    for statement in document["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if not all(a.startswith("s3:") for a in actions):
            statement["Resource"] = "*"
            statement.pop("Condition", None)
    return document


def load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeJobRunner(threading.Thread):
    """Plays Fargate for the job's tasks: runs ``upload.main`` with the job role's credentials
    for each RUNNING task, writes its output to ``job/job/<task id>`` with the execution role's
    credentials (what the awslogs driver does), then stops the task with the job's exit code."""

    def __init__(self, job_env: dict[str, str], job_s3, exec_logs, log_group: str, stream_prefix: str, container: str, ready=lambda: True):
        super().__init__(daemon=True)
        self.ready = ready
        self.job_env, self.job_s3, self.exec_logs = job_env, job_s3, exec_logs
        self.log_group, self.stream_prefix, self.container = log_group, stream_prefix, container
        self.upload = load_module(PROJECT_ROOT / "jobs" / JOB / "upload.py", "job_upload")
        self.seen: set[str] = set()
        self.results: dict[str, int] = {}
        self.errors: list[BaseException] = []
        self._stop_event = threading.Event()

    def tasks(self):
        for tasks in get_backend("ecs")[ACCOUNT][REGION].tasks.values():
            yield from tasks.values()

    def run(self):
        while not self._stop_event.wait(0.05):
            if not self.ready():
                continue
            for task in list(self.tasks()):
                if task.task_arn in self.seen or task.desired_status != "RUNNING":
                    continue
                self.seen.add(task.task_arn)
                try:
                    self.run_task(task)
                except BaseException as err:  # surfaced by the test
                    self.errors.append(err)

    def run_task(self, task):
        for container in task.containers:
            container.exitCode = None  # running: no exit code yet (moto would say 0)
            container.last_status = "RUNNING"
        env = dict(self.job_env)
        for override in task.overrides.get("containerOverrides", []):
            if override.get("name") == self.container:
                env.update({e["name"]: e["value"] for e in override.get("environment", [])})
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = self.upload.main(env, s3=self.job_s3)
        stream = f"{self.stream_prefix}/{self.container}/{task.task_arn.split('/')[-1]}"
        self.exec_logs.create_log_stream(logGroupName=self.log_group, logStreamName=stream)
        now = int(time.time() * 1000)
        events = [{"timestamp": now + i, "message": line} for i, line in enumerate(out.getvalue().splitlines())]
        self.exec_logs.put_log_events(logGroupName=self.log_group, logStreamName=stream, logEvents=events)
        for container in task.containers:
            container.exitCode = code
            container.last_status = "STOPPED"
        task.stopped_reason = "Essential container in task exited"
        task.stop_code = "EssentialContainerExited"
        task.desired_status = "STOPPED"
        task.last_status = "STOPPED"
        self.results[task.task_arn] = code

    def stop(self):
        self._stop_event.set()
        self.join(5)


def user_with_policy(iam, name: str, document: dict):
    """A moto IAM user holding ``document``; returns boto3 session kwargs with its keys."""
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="synthesized", PolicyDocument=json.dumps(for_moto(document)))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}


@pytest.fixture
def deployment(monkeypatch):
    """The cluster stack's job, data bucket and worker grants, deployed into moto."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", "aws://")
    cluster_tpl, network_tpl = template("cluster"), template("network")
    with mock_aws():
        state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})
        resolve = Resolver()
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # moto's ENIs need it
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24")["Subnet"]["SubnetId"] for i in (1, 2)
        ]
        jobs_sg = ec2.create_security_group(GroupName="jobs", Description="jobs", VpcId=vpc)["GroupId"]
        resolve.imports.update(
            {"PrivateSubnet1": subnets[0], "PrivateSubnet2": subnets[1], "SecurityGroupsJobs": jobs_sg}
        )
        assert any("SecurityGroupsJobs" in k for k in network_tpl["Outputs"]), "network stack exports no jobs group"

        ecs = boto3.client("ecs", region_name=REGION)
        cluster_id, _ = resource(cluster_tpl, "Cluster", "AWS::ECS::Cluster")
        services_cluster = ecs.create_cluster(clusterName="airflow-dev-cluster")["cluster"]
        resolve.refs[cluster_id], resolve.arns[cluster_id] = services_cluster["clusterName"], services_cluster["clusterArn"]
        # The jobs run in a cluster of their own (constructs_lib/ecs_jobs.py).
        jobs_cluster_id, _ = resource(cluster_tpl, "JobsCluster", "AWS::ECS::Cluster")
        cluster = ecs.create_cluster(clusterName="airflow-dev-jobs")["cluster"]
        resolve.refs[jobs_cluster_id], resolve.arns[jobs_cluster_id] = cluster["clusterName"], cluster["clusterArn"]

        s3 = boto3.client("s3", region_name=REGION)
        for logical, res in cluster_tpl["Resources"].items():
            if res["Type"] == "AWS::S3::Bucket":
                name = logical.lower()[:40]
                s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
                resolve.refs[logical], resolve.arns[logical] = name, f"arn:aws:s3:::{name}"
        logs = boto3.client("logs", region_name=REGION)
        for logical, res in cluster_tpl["Resources"].items():
            if res["Type"] == "AWS::Logs::LogGroup":
                # A job's log group has a physical name (the workers' job variable names it).
                name = res["Properties"].get("LogGroupName") or logical
                logs.create_log_group(logGroupName=name)
                resolve.refs[logical] = name
                resolve.arns[logical] = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*"
        iam = boto3.client("iam", region_name=REGION)
        trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
        for logical, res in cluster_tpl["Resources"].items():
            if res["Type"] == "AWS::IAM::Role":
                role = iam.create_role(RoleName=logical[:64], AssumeRolePolicyDocument=trust)["Role"]
                resolve.refs[logical], resolve.arns[logical] = role["RoleName"], role["Arn"]

        prefix = "JobsUploadFileToS3"
        _, task_def = resource(cluster_tpl, f"{prefix}TaskDefinition", "AWS::ECS::TaskDefinition")
        props = task_def["Properties"]
        [container] = props["ContainerDefinitions"]
        ecs.register_task_definition(
            family=props["Family"],
            networkMode=props["NetworkMode"],
            requiresCompatibilities=props["RequiresCompatibilities"],
            cpu=props["Cpu"],
            memory=props["Memory"],
            taskRoleArn=resolve(props["TaskRoleArn"]),
            executionRoleArn=resolve(props["ExecutionRoleArn"]),
            containerDefinitions=[
                {
                    "name": container["Name"],
                    "image": "upload-file-to-s3:test",
                    "memory": int(props["Memory"]),  # moto needs a container memory
                    "essential": True,
                    "environment": [{"name": e["Name"], "value": resolve(e["Value"])} for e in container["Environment"]],
                }
            ],
        )
        _, workers_td = resource(cluster_tpl, "WorkersTaskDefinition", "AWS::ECS::TaskDefinition")
        worker_env = {e["Name"]: e["Value"] for e in workers_td["Properties"]["ContainerDefinitions"][0]["Environment"]}
        variable = resolve(worker_env[VARIABLE_ENV])
        monkeypatch.setenv(VARIABLE_ENV, variable)

        policies = {
            name: resolve(resource(cluster_tpl, logical, "AWS::IAM::Policy")[1]["Properties"]["PolicyDocument"])
            for name, logical in (
                ("worker", "WorkersTaskRoleDefaultPolicy"),
                ("job", f"{prefix}TaskRoleDefaultPolicy"),
                ("execution", f"{prefix}ExecutionRoleDefaultPolicy"),
            )
        }
        yield SimpleNamespace(
            iam=iam,
            s3=s3,
            ecs=ecs,
            policies=policies,
            settings=json.loads(variable),
            job_env={e["Name"]: resolve(e["Value"]) for e in container["Environment"]},
            container=container,
            subnets=subnets,
            jobs_sg=jobs_sg,
            cluster=cluster,
            services_cluster=services_cluster,
            family=props["Family"],
            resolve=resolve,
        )
        state_manager.unset_transition("ecs::task")


def run_example_dag(deployment, monkeypatch, worker_policy: dict, before_execute=None):
    """Render and execute the DAG's operator as a worker would, with ``worker_policy`` as the
    worker's permissions; the job runs in a :class:`FakeJobRunner` once the operator knows its
    task (started or reattached). ``before_execute(operator, ti)`` runs after rendering.
    Returns (result, runner, operator, ti)."""
    from airflow.sdk.execution_time.context import VariableAccessor

    worker = user_with_policy(deployment.iam, f"worker-{len(deployment.iam.list_users()['Users'])}", worker_policy)
    job = boto3.Session(**user_with_policy(deployment.iam, f"job-{time.monotonic_ns()}", deployment.policies["job"]), region_name=REGION)
    execution = boto3.Session(**user_with_policy(deployment.iam, f"exec-{time.monotonic_ns()}", deployment.policies["execution"]), region_name=REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", worker["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", worker["aws_secret_access_key"])

    dag = load_module(PROJECT_ROOT / "dags" / "example_ecs_job.py", "example_ecs_job_dag").dag_object
    operator = dag.get_task("upload_file_to_s3")
    ti = SimpleNamespace(dag_id=dag.dag_id, task_id=operator.task_id, run_id=RUN_ID, map_index=-1, xcoms={})
    ti.xcom_push = lambda key, value: ti.xcoms.__setitem__(key, value)
    context = {
        "var": {"json": VariableAccessor(deserialize_json=True), "value": VariableAccessor(deserialize_json=False)},
        "ds": "2026-11-25",
        "ti": ti,
        "run_id": RUN_ID,
    }
    operator.render_template_fields(context)
    # Faster than the DAG's polling (6 s waiter, 10 s log fetch); the calls are the same.
    operator.waiter_delay = 1
    operator.awslogs_fetch_interval = timedelta(seconds=0.2)

    runner = FakeJobRunner(
        deployment.job_env,
        job.client("s3"),
        execution.client("logs"),
        deployment.settings["log_group"],
        deployment.settings["log_stream_prefix"],
        deployment.settings["container_name"],
        ready=lambda: operator.arn is not None,
    )
    if before_execute is not None:
        before_execute(operator, ti)
    runner.start()
    try:
        with enable_iam_authentication():
            result = operator.execute(context)
    finally:
        runner.stop()
    assert not runner.errors, runner.errors
    return result, runner, operator, ti


def test_example_dag_runs_its_job_with_the_synthesized_grants(deployment, monkeypatch):
    result, runner, operator, ti = run_example_dag(deployment, monkeypatch, deployment.policies["worker"])

    # The operator ran the job's task definition in the jobs cluster, in the private subnets with
    # the jobs' security group: every value came from the deployment's variable, none typed in the DAG.
    assert deployment.settings["cluster"] == deployment.cluster["clusterName"] != deployment.services_cluster["clusterName"]
    [task] = deployment.ecs.describe_tasks(cluster=deployment.cluster["clusterArn"], tasks=[ti.xcoms["ecs_task_arn"]])["tasks"]
    assert task["taskDefinitionArn"].split("/")[-1].startswith(deployment.family + ":")
    assert task["launchType"] == "FARGATE" and task["lastStatus"] == "STOPPED"
    assert task["startedBy"], "reattach=True tags the task with startedBy"
    network = operator.network_configuration["awsvpcConfiguration"]
    assert sorted(network["subnets"]) == sorted(deployment.subnets)
    assert network["securityGroups"] == [deployment.jobs_sg] and network["assignPublicIp"] == deployment.settings["assign_public_ip"] == "DISABLED"
    assert runner.results == {task["taskArn"]: 0}

    # The job wrote its file under uploads/ in the data bucket with its own role.
    bucket = deployment.settings["data_bucket"]
    [obj] = deployment.s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert obj["Key"].startswith("uploads/2026-11-25/") and obj["Key"].endswith(".txt")
    body = deployment.s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode()
    assert body.startswith("Hello from an ECS job")
    # The operator followed the job's log stream: its last line is the operator's result.
    assert result == f"uploaded s3://{bucket}/{obj['Key']}"


def test_the_dag_takes_the_public_ip_choice_from_the_variable(deployment, monkeypatch):
    """In lean the variable says ENABLED (public subnets, no NAT): without a public IP the job
    could not pull its image from ECR."""
    from airflow.sdk.execution_time.context import VariableAccessor

    monkeypatch.setenv(VARIABLE_ENV, json.dumps({**deployment.settings, "assign_public_ip": "ENABLED"}))
    operator = load_module(PROJECT_ROOT / "dags" / "example_ecs_job.py", "example_ecs_job_dag").dag_object.get_task(
        "upload_file_to_s3"
    )
    ti = SimpleNamespace(dag_id="example_ecs_job", task_id=operator.task_id, run_id=RUN_ID, map_index=-1)
    operator.render_template_fields(
        {"var": {"json": VariableAccessor(deserialize_json=True)}, "ds": "2026-11-25", "ti": ti, "run_id": RUN_ID}
    )
    assert operator.network_configuration["awsvpcConfiguration"]["assignPublicIp"] == "ENABLED"


def test_the_job_may_write_only_under_its_prefixes(deployment):
    from botocore.exceptions import ClientError as Error

    job = boto3.Session(**user_with_policy(deployment.iam, "job-only", deployment.policies["job"]), region_name=REGION)
    s3 = job.client("s3")
    bucket = deployment.settings["data_bucket"]
    with enable_iam_authentication():
        s3.put_object(Bucket=bucket, Key="uploads/allowed.txt", Body=b"x")
        for key in ("elsewhere/denied.txt", "uploadsX/denied.txt"):
            with pytest.raises(Error, match="AccessDenied"):
                s3.put_object(Bucket=bucket, Key=key, Body=b"x")
        with pytest.raises(Error, match="AccessDenied"):
            s3.get_object(Bucket=bucket, Key="uploads/allowed.txt")


@pytest.mark.parametrize(
    ("sid", "error"),
    [
        ("RunJobs", ClientError),  # RunTask
        ("ReattachJobs", ClientError),  # ListTasks (reattach=True)
        ("FollowJobs", WaiterError),  # DescribeTasks in the tasks_stopped waiter
        ("ReadJobLogs", ClientError),  # GetLogEvents of the job's last log line
    ],
)
def test_each_worker_grant_is_needed(deployment, monkeypatch, sid, error):
    policy = copy.deepcopy(deployment.policies["worker"])
    before = len(policy["Statement"])
    policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != sid]
    assert len(policy["Statement"]) == before - 1, f"no statement {sid} in the synthesized worker policy"
    with pytest.raises(error) as raised:
        run_example_dag(deployment, monkeypatch, policy)
    assert "AccessDenied" in str(raised.value) or "not authorized" in str(raised.value)


def test_reattach_follows_the_job_a_restarted_worker_had_started(deployment, monkeypatch):
    """reattach=True: a retry of the Airflow task (e.g. after a Spot interruption of its worker)
    finds the job the first try started, by its startedBy tag, and follows it instead of
    starting a second one (ListTasks, granted by ReattachJobs)."""
    from airflow.providers.amazon.aws.utils.identifiers import generate_uuid

    earlier = {}

    def start_the_first_try(operator, ti):
        started_by = generate_uuid(*map(str, [ti.dag_id, ti.task_id, ti.run_id, ti.map_index]))
        earlier["arn"] = deployment.ecs.run_task(
            cluster=operator.cluster,
            taskDefinition=operator.task_definition,
            launchType="FARGATE",
            overrides=operator.overrides,
            networkConfiguration=operator.network_configuration,
            startedBy=started_by,
        )["tasks"][0]["taskArn"]

    result, runner, operator, ti = run_example_dag(
        deployment, monkeypatch, deployment.policies["worker"], before_execute=start_the_first_try
    )
    assert operator.arn == earlier["arn"] == ti.xcoms["ecs_task_arn"]
    assert deployment.ecs.list_tasks(cluster=operator.cluster, desiredStatus="STOPPED")["taskArns"] == [earlier["arn"]]
    assert deployment.ecs.list_tasks(cluster=operator.cluster, desiredStatus="RUNNING")["taskArns"] == []
    assert runner.results == {earlier["arn"]: 0} and result.startswith("uploaded s3://")


# --- Deferrable: EcsRunTaskOperator(deferrable=True) in ``example_ecs_job_deferrable`` ----------
#: The triggerer's statements for deferred jobs (constructs_lib/ecs_jobs.py, grant_follow_deferred).
DEFERRED_SIDS = ("WaitForDeferredJobs", "ForwardDeferredJobLogs")


def triggerer_policy() -> dict:
    """The triggerer task role's synthesized policy document (unresolved)."""
    return resource(template("cluster"), "ServiceRolesTriggererDefaultPolicy", "AWS::IAM::Policy")[1]["Properties"]["PolicyDocument"]


def resolved_triggerer_policy(deployment) -> dict:
    """The triggerer's policy with the moto resources filled in. Its Secrets Manager statements
    (the secrets imported from the database stack, which this test does not deploy) are left out:
    they grant no ECS or CloudWatch Logs call."""
    document = copy.deepcopy(triggerer_policy())
    document["Statement"] = [
        s for s in document["Statement"]
        if not all(a.startswith("secretsmanager:") for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))
    ]
    return deployment.resolve(document)


def without(document: dict, *sids: str) -> dict:
    document = copy.deepcopy(document)
    document["Statement"] = [s for s in document["Statement"] if s.get("Sid") not in sids]
    return document


def run_deferred_example_dag(deployment, monkeypatch, triggerer: dict):
    """Run ``example_ecs_job_deferrable`` as Airflow does: the worker (the synthesized worker
    policy) starts the job and defers; the trigger's calls run with ``triggerer`` as the
    triggerer's permissions; a worker resumes with ``execute_complete``.

    The trigger's calls are those of ``TaskDoneTrigger.run`` (provider 9.39.0): the
    ``tasks_stopped`` waiter (DescribeTasks) on the trigger's cluster and task, and
    ``GetLogEvents`` on its log group and stream, made here with boto3's clients (the same API
    calls and waiter model; the trigger itself uses aiobotocore, which moto does not serve and the
    test environment does not install). Returns (result, runner, trigger kwargs)."""
    from airflow.sdk.exceptions import TaskDeferred
    from airflow.sdk.execution_time.context import VariableAccessor

    worker = user_with_policy(deployment.iam, f"dworker-{time.monotonic_ns()}", deployment.policies["worker"])
    trig = boto3.Session(**user_with_policy(deployment.iam, f"triggerer-{time.monotonic_ns()}", triggerer), region_name=REGION)
    job = boto3.Session(**user_with_policy(deployment.iam, f"job-{time.monotonic_ns()}", deployment.policies["job"]), region_name=REGION)
    execution = boto3.Session(**user_with_policy(deployment.iam, f"exec-{time.monotonic_ns()}", deployment.policies["execution"]), region_name=REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", worker["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", worker["aws_secret_access_key"])

    dag = load_module(PROJECT_ROOT / "dags" / "example_ecs_job.py", "example_ecs_job_dag").deferrable_dag_object
    assert dag.dag_id == "example_ecs_job_deferrable"
    operator = dag.get_task("upload_file_to_s3")
    assert operator.deferrable is True
    ti = SimpleNamespace(dag_id=dag.dag_id, task_id=operator.task_id, run_id=RUN_ID, map_index=-1, xcoms={})
    ti.xcom_push = lambda key, value: ti.xcoms.__setitem__(key, value)
    context = {
        "var": {"json": VariableAccessor(deserialize_json=True), "value": VariableAccessor(deserialize_json=False)},
        "ds": "2026-11-25",
        "ti": ti,
        "run_id": RUN_ID,
    }
    operator.render_template_fields(context)
    runner = FakeJobRunner(
        deployment.job_env,
        job.client("s3"),
        execution.client("logs"),
        deployment.settings["log_group"],
        deployment.settings["log_stream_prefix"],
        deployment.settings["container_name"],
        ready=lambda: operator.arn is not None,
    )
    runner.start()
    try:
        with enable_iam_authentication():
            with pytest.raises(TaskDeferred) as deferred:
                operator.execute(context)
        path, kwargs = deferred.value.trigger.serialize()
        assert path == "airflow.providers.amazon.aws.triggers.ecs.TaskDoneTrigger"
        # The triggerer's calls, with the triggerer's permissions only.
        with enable_iam_authentication():
            trig.client("ecs").get_waiter("tasks_stopped").wait(
                cluster=kwargs["cluster"], tasks=[kwargs["task_arn"]], WaiterConfig={"Delay": 0.2, "MaxAttempts": 100}
            )
            forwarded = trig.client("logs").get_log_events(
                logGroupName=kwargs["log_group"], logStreamName=kwargs["log_stream"], startFromHead=True
            )["events"]
        # A worker resumes the task: it checks the job's exit code and returns its last log line.
        with enable_iam_authentication():
            result = operator.execute_complete(
                context, {"status": "success", "task_arn": kwargs["task_arn"], "cluster": kwargs["cluster"]}
            )
    finally:
        runner.stop()
    assert not runner.errors, runner.errors
    return result, runner, kwargs, forwarded


def test_the_deferrable_dag_runs_its_job_with_the_synthesized_grants(deployment, monkeypatch):
    triggerer = resolved_triggerer_policy(deployment)
    result, runner, kwargs, forwarded = run_deferred_example_dag(deployment, monkeypatch, triggerer)

    assert kwargs["cluster"] == deployment.settings["cluster"]
    assert kwargs["log_group"] == deployment.settings["log_group"]
    assert kwargs["log_stream"].startswith(f"{deployment.settings['log_stream_prefix']}/{deployment.settings['container_name']}/")
    assert runner.results == {kwargs["task_arn"]: 0}
    bucket = deployment.settings["data_bucket"]
    [obj] = deployment.s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert result == f"uploaded s3://{bucket}/{obj['Key']}"
    # The trigger forwarded the job's log lines to the task's log.
    assert any(e["message"] == result for e in forwarded)


@pytest.mark.parametrize(
    ("sids", "error"),
    [
        (DEFERRED_SIDS, WaiterError),  # the triggerer's role as it was: task logs only
        (("WaitForDeferredJobs",), WaiterError),  # DescribeTasks in the tasks_stopped waiter
        (("ForwardDeferredJobLogs",), ClientError),  # GetLogEvents forwarding the job's lines
    ],
)
def test_each_triggerer_grant_is_needed(deployment, monkeypatch, sids, error):
    triggerer = resolved_triggerer_policy(deployment)
    policy = without(triggerer, *sids)
    assert len(policy["Statement"]) == len(triggerer["Statement"]) - len(sids), f"no statements {sids} in the triggerer's policy"
    with pytest.raises(error) as raised:
        run_deferred_example_dag(deployment, monkeypatch, policy)
    assert "AccessDenied" in str(raised.value) or "not authorized" in str(raised.value)


def test_the_triggerer_follows_only_the_jobs_cluster_and_log_streams():
    """moto ignores resources and conditions outside S3: they are checked on the template."""
    statements = {s.get("Sid"): s for s in triggerer_policy()["Statement"]}
    wait, logs = statements["WaitForDeferredJobs"], statements["ForwardDeferredJobLogs"]
    assert wait["Action"] == "ecs:DescribeTasks"
    assert set(wait["Condition"]["ArnEquals"]) == {"ecs:cluster"}
    assert "JobsCluster" in json.dumps(wait["Condition"]) and "JobsCluster" in json.dumps(wait["Resource"])
    assert ":task/" in json.dumps(wait["Resource"])
    assert logs["Action"] == "logs:GetLogEvents"
    assert ":log-group:/airflow-dev/jobs/upload-file-to-s3:" in json.dumps(logs["Resource"]) and ":log-stream:job/*" in json.dumps(logs["Resource"])
    ecs_or_logs = [a for s in statements.values() for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]) if a.split(":")[0] in ("ecs", "logs", "iam")]
    assert sorted(ecs_or_logs) == ["ecs:DescribeTasks", "logs:GetLogEvents"]
