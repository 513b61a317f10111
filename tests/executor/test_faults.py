"""Issue 9 and 8.4/8.7: outages delay launches, config that ECS would refuse never reaches RunTask,
queues pick a size, the override limit, the connection pool, the DescribeTaskDefinition fallback
cache and live task logs from CloudWatch."""

from __future__ import annotations

import json
import time
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from airflow_ecs_fargate.executor import EcsFargateExecutor
from airflow_ecs_fargate.workload_command import (
    OVERRIDES_MAX_CHARS,
    compact_command,
    decode,
    overrides_chars,
    workload_json,
)
from tests.executor.conftest import CONTAINER, TASK_FAMILY, make_workload, poll, settle, settle_until, task_events

LOG_GROUP = f"/airflow/workers-{uuid.uuid4().hex[:8]}"
OUTAGE = EndpointConnectionError(endpoint_url="https://ecs.us-east-1.amazonaws.com")


def client_error(code: str, message: str = "x", op: str = "RunTask") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, op)


# -- 9.1 outages delay, they do not fail -------------------------------------------------------


def test_transient_failures_beyond_the_attempt_budget_still_launch(aws, make_executor):
    """Twelve transient failures (network, 5xx) with max_run_task_attempts=3:
    on main the task failed after the third; now it launches, and one event tells the story."""
    ex = make_executor(EcsFargateExecutor, max_run_task_attempts=3)
    ex.ecs.script["run_task"] = [OUTAGE] * 8 + [client_error("ServiceUnavailableException")] * 2 + [
        client_error("ServerException")] * 2
    w = make_workload()
    ex.queue_workload(w, session=None)
    settle_until(ex, lambda: w.ti.key in ex.event_buffer, timeout=10)
    assert ex.event_buffer[w.ti.key][0] == "running"
    calls = ex.ecs.of("run_task")
    assert len(calls) == 13
    assert len({c["clientToken"] for c in calls}) == 1  # idempotent across the outage
    events = task_events(ex, w.ti.key)
    assert [e for e, _ in events] == ["ecs task submit retry", "ecs task launched after retries"]
    assert "8 x EndpointConnectionError" in events[1][1] and "ServiceUnavailableException" in events[1][1]


def test_transient_failures_fail_at_the_workload_deadline_with_the_story(aws, make_executor, monkeypatch):
    """The deadline is queued time + task_queued_timeout - margin (here 1.0 - 0.4 s)."""
    monkeypatch.setenv("AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT", "1.0")
    ex = make_executor(EcsFargateExecutor, max_run_task_attempts=3, transient_retry_margin_seconds="0.4")
    ex.ecs.script["run_task"] = [OUTAGE] * 10_000
    w = make_workload()
    started = time.monotonic()
    ex.queue_workload(w, session=None)
    settle_until(ex, lambda: w.ti.key in ex.event_buffer, timeout=5)
    elapsed = time.monotonic() - started
    state, info = ex.event_buffer[w.ti.key]
    assert state == "failed"
    assert 0.55 <= elapsed < 1.0, elapsed
    assert len(ex.ecs.of("run_task")) > 3
    assert "task_queued_timeout" in info and "x EndpointConnectionError" in info


def test_describe_tasks_outage_loses_no_task(aws, make_executor):
    ex = make_executor(EcsFargateExecutor)
    w = make_workload()
    ex.queue_workload(w, session=None)
    settle(ex)
    arn = ex.tracker.arn_for(w.ti.key)
    aws.stop_task(arn, exit_codes={CONTAINER: 0, "sidecar": 0})
    ex.ecs.script["describe_tasks"] = [OUTAGE] * 3
    for _ in range(3):
        poll(ex)
        assert ex.event_buffer[w.ti.key][0] == "running"
    poll(ex)
    assert ex.event_buffer[w.ti.key][0] == "success"


# -- 8.4 a failed DescribeTaskDefinition is not repeated every round ---------------------------


def test_failed_task_definition_lookup_is_cached(aws, make_executor):
    ex = make_executor(EcsFargateExecutor)
    ex.ecs.script["describe_task_definition"] = [client_error("AccessDeniedException", "not authorized")] * 10
    workloads = [make_workload(f"t{i}") for i in range(3)]
    for w in workloads:
        ex.queue_workload(w, session=None)
    settle(ex)
    for _ in range(4):
        poll(ex)
    assert len(ex.ecs.of("describe_tasks")) >= 4
    assert len(ex.ecs.of("describe_task_definition")) == 1
    # The fallback still judges the task: only the Airflow container counts.
    aws.stop_task(ex.tracker.arn_for(workloads[0].ti.key), exit_codes={CONTAINER: 0, "sidecar": 1})
    poll(ex)
    assert ex.event_buffer[workloads[0].ti.key][0] == "success"


def test_failed_task_definition_lookup_is_retried_after_its_interval(aws, make_executor):
    ex = make_executor(EcsFargateExecutor, task_definition_retry_seconds="0.05")
    ex.ecs.script["describe_task_definition"] = [client_error("AccessDeniedException", "not authorized")]
    ex.queue_workload(make_workload(), session=None)
    settle(ex)
    poll(ex)
    time.sleep(0.1)
    poll(ex)
    poll(ex)
    assert len(ex.ecs.of("describe_task_definition")) == 2  # failed, retried once, then cached


# -- 9.7 connection pool ------------------------------------------------------------------------


@pytest.mark.parametrize("threads", [10, 25])
def test_connection_pool_covers_every_thread(aws, make_executor, threads):
    ex = make_executor(EcsFargateExecutor, launch_concurrency=threads)
    assert ex.ecs.meta.config.max_pool_connections >= threads + 1
    ex.mark_client_stale()  # rebuilt after a credential error: same pool size
    assert ex.ecs_client().meta.config.max_pool_connections >= threads + 1


# -- 9.4 no launch ECS would refuse -------------------------------------------------------------


def long_workload(executor_config=None, env_chars=0):
    w = make_workload("t" * 250, executor_config=executor_config)
    w.ti.dag_id = "d" * 250
    w.ti.run_id = "r" * 250
    w.ti.map_index = 99_999
    w.log_path = f"dag_id={w.ti.dag_id}/run_id={w.ti.run_id}/task_id={w.ti.task_id}/map_index=99999/attempt=1.log"
    w.dag_rel_path = "group/" * 40 + "dag.py"
    # A real HS512 JWT for this task is about 400 characters.
    w.token = "eyJ" + "x" * 600
    return w


def test_oversized_inline_command_is_sent_compact_and_decodes_to_the_same_workload(aws, make_executor):
    ex = make_executor(EcsFargateExecutor)
    env = [{"name": f"VAR_{i}", "value": "v" * 40} for i in range(80)]  # about 4.8 k characters
    w = long_workload({"overrides": {"containerOverrides": [{"name": CONTAINER, "environment": env}]}})
    inline = ex.workload_command(w)
    plain_kwargs = ex.run_task_kwargs_for(w.ti.key, inline, None, w.ti.executor_config)
    assert overrides_chars(plain_kwargs["overrides"]) > OVERRIDES_MAX_CHARS  # would be refused by ECS
    ex.queue_workload(w, session=None)
    settle(ex)
    assert ex.event_buffer[w.ti.key][0] == "running"
    (call,) = ex.ecs.of("run_task")
    assert overrides_chars(call["overrides"]) <= OVERRIDES_MAX_CHARS
    command = call["overrides"]["containerOverrides"][0]["command"]
    assert command[:4] == ["python", "-m", "airflow_ecs_fargate.workload_command", "--zjson"]
    assert json.loads(workload_json(command)) == json.loads(w.model_dump_json())


def test_workload_that_cannot_fit_fails_at_once_with_the_reason(aws, make_executor):
    ex = make_executor(EcsFargateExecutor)
    import secrets

    env = [{"name": f"V{i}", "value": secrets.token_hex(40)} for i in range(100)]  # incompressible
    w = long_workload({"overrides": {"containerOverrides": [{"name": CONTAINER, "environment": env}]}})
    ex.queue_workload(w, session=None)
    settle(ex)
    state, info = ex.event_buffer[w.ti.key]
    assert state == "failed"
    assert "8192" in info and "compact" in info
    assert ex.ecs.of("run_task") == []


def test_inline_command_kept_when_it_fits(aws, make_executor):
    ex = make_executor(EcsFargateExecutor)
    w = long_workload()
    ex.queue_workload(w, session=None)
    settle(ex)
    (call,) = ex.ecs.of("run_task")
    assert "--json-string" in call["overrides"]["containerOverrides"][0]["command"]
    # Measured: the longest legal ids with a mapped index and a long token stay under the limit.
    assert overrides_chars(call["overrides"]) < OVERRIDES_MAX_CHARS


def test_compact_entry_point_runs_execute_workload_with_the_json(monkeypatch):
    from airflow.sdk.execution_time import execute_workload

    from airflow_ecs_fargate import workload_command

    seen = {}
    monkeypatch.setattr(execute_workload, "main", lambda: seen.setdefault("argv", list(__import__("sys").argv)))
    text = make_workload().model_dump_json()
    command = compact_command(["python", "-m", "airflow.sdk.execution_time.execute_workload", "--json-string", text])
    workload_command.main(command[3:])
    assert seen["argv"][1:] == ["--json-string", text]
    assert decode(command[4]) == text


# -- 9.2 executor_config refused with a reason ---------------------------------------------------


@pytest.mark.parametrize(
    "config, words",
    [
        ("large", ["must be a dict", "str"]),
        ({"command": ["x"]}, ["must not set ['command']"]),
        ({"name": "x"}, ["must not set ['name']"]),
        ({"overides": {}}, ["not RunTask parameters", "overides"]),
        ({"overrides": {"cpu": "1024", "memory": "1000"}}, ["memory=1000", "cpu=1024"]),
        ({"overrides": {"cpu": "300"}}, ["cpu=300"]),
    ],
)
def test_bad_executor_config_fails_the_task_before_run_task(aws, make_executor, config, words):
    ex = make_executor(EcsFargateExecutor)
    key = make_workload().ti.key
    ex.running.add(key)
    ex.execute_async(key=key, command=["true"], executor_config=config)
    info = ex.event_buffer[key][1]
    assert all(word in info for word in words), info
    assert ex.ecs.of("run_task") == []


def test_policy_rejects_bad_executor_config_with_task_and_fix(monkeypatch):
    from airflow.exceptions import AirflowClusterPolicyViolation
    from airflow.sdk import DAG
    from airflow.providers.standard.operators.empty import EmptyOperator

    from airflow_ecs_fargate import policy

    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "airflow_ecs_fargate.executor.EcsFargateExecutor")
    with DAG("bad_dag", schedule=None):
        bad = EmptyOperator(task_id="bad_task", executor_config="large")
        good = EmptyOperator(task_id="good_task", executor_config={"overrides": {"cpu": "1024", "memory": "2048"}})
    policy.task_policy(good)
    with pytest.raises(AirflowClusterPolicyViolation) as caught:
        policy.task_policy(bad)
    message = str(caught.value)
    assert "'bad_task'" in message and "'bad_dag'" in message and "must be a dict" in message and "queue=" in message
    # Tasks of other executors keep their own executor_config (e.g. a pod_override).
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    policy.task_policy(bad)


def test_policy_is_registered_with_airflow():
    """Airflow loads it through the airflow.policy entry point (no airflow_local_settings.py)."""
    import pluggy
    from airflow import policies, settings

    pm = pluggy.PluginManager(policies.local_settings_hookspec.project_name)
    pm.add_hookspecs(policies)
    settings.load_policy_plugins(pm)
    assert "airflow_ecs_fargate.policy" in {getattr(p, "__name__", "") for p in pm.get_plugins()}


# -- 9.3 queues pick a size ---------------------------------------------------------------------

QUEUES = json.dumps({"large": {"cpu": 2048, "memory": 8192}, "on-demand": {"capacity_provider": "FARGATE"}})


@pytest.mark.parametrize(
    "queue, overrides, strategy",
    [
        ("large", {"cpu": "2048", "memory": "8192"}, None),
        ("on-demand", {}, [{"capacityProvider": "FARGATE", "weight": 1, "base": 0}]),
        ("default", {}, None),
    ],
)
def test_queue_picks_the_size_in_run_task_overrides(aws, make_executor, queue, overrides, strategy):
    ex = make_executor(EcsFargateExecutor, queues=QUEUES)
    w = make_workload()
    w.ti.queue = queue
    ex.queue_workload(w, session=None)
    settle(ex)
    (call,) = ex.ecs.of("run_task")
    assert {k: call["overrides"].get(k) for k in ("cpu", "memory") if k in call["overrides"]} == overrides
    assert call.get("capacityProviderStrategy") == strategy
    assert ("launchType" in call) == (strategy is None)


def test_executor_config_overrides_the_queue(aws, make_executor):
    ex = make_executor(EcsFargateExecutor, queues=QUEUES)
    w = make_workload(executor_config={"overrides": {"memory": "16384"}})
    w.ti.queue = "large"
    ex.queue_workload(w, session=None)
    settle(ex)
    (call,) = ex.ecs.of("run_task")
    assert call["overrides"]["cpu"] == "2048" and call["overrides"]["memory"] == "16384"


@pytest.mark.parametrize(
    "value, words",
    [
        ('{"large": {"cpu": 2048, "memory": 1024}}', ["large", "memory=1024"]),
        ('{"large": {"vcpu": 2}}', ["unknown keys", "vcpu"]),
        ("[1]", ["JSON object"]),
        ("{", ["not valid JSON"]),
        ('{"team": {"task_definition": "f", "log_stream_prefix": "worker/team"}}', ["team", "log_stream_prefix", "'/'"]),
        ('{"team": {"task_definition": "f", "log_stream_prefix": ""}}', ["team", "log_stream_prefix"]),
    ],
)
def test_bad_queues_setting_fails_at_startup(aws, make_executor, value, words):
    with pytest.raises(ValueError) as caught:
        make_executor(EcsFargateExecutor, queues=value)
    assert all(w in str(caught.value) for w in words) and "queues" in str(caught.value)


# -- 8.7 live task logs from CloudWatch ---------------------------------------------------------


class _Ti:
    def __init__(self, arn, try_number=1):
        self.external_executor_id = arn
        self.try_number = try_number


def test_get_task_log_reads_the_running_workers_awslogs_stream(aws, make_executor):
    ex = make_executor(EcsFargateExecutor, worker_log_group=LOG_GROUP, worker_log_stream_prefix="worker")
    arn = f"arn:aws:ecs:us-east-1:123456789012:task/airflow/{'a' * 32}"
    logs = boto3.client("logs", region_name="us-east-1")
    logs.create_log_group(logGroupName=LOG_GROUP)
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=f"worker/{CONTAINER}/{'a' * 32}")
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName=f"worker/{CONTAINER}/{'a' * 32}",
        logEvents=[{"timestamp": now + i, "message": f'{{"event": "line {i}"}}'} for i in range(3)],
    )
    sources, texts = ex.get_task_log(_Ti(arn), 1)
    assert sources and LOG_GROUP in sources[0] and f"worker/{CONTAINER}/{'a' * 32}" in sources[0]
    assert texts == ['{"event": "line 0"}\n{"event": "line 1"}\n{"event": "line 2"}\n']
    # An older try, a task not launched yet, or no log group: nothing (Airflow falls back).
    assert ex.get_task_log(_Ti(arn, try_number=2), 1) == ([], [])
    assert ex.get_task_log(_Ti(None), 1) == ([], [])
    # Not started yet: a source and a message, never an exception (and no fetch from port 8793).
    sources, texts = ex.get_task_log(_Ti(arn.replace("a" * 32, "b" * 32)), 1)
    assert sources and "no log lines yet" in texts[0]


def test_get_task_log_reads_a_team_queues_stream_under_its_own_prefix(aws, make_executor):
    """A team queue's workers log under the queue's ``log_stream_prefix``: the live log of its
    RUNNING task is read there, not under the executor's ``worker_log_stream_prefix``."""
    queues = json.dumps({"team-a": {"task_definition": "airflow-dev-worker-team-a", "log_stream_prefix": "worker-team-a"},
                         "large": {"cpu": 2048, "memory": 8192}})
    group = f"{LOG_GROUP}-teams"  # the package's moto session keeps the other tests' groups
    ex = make_executor(EcsFargateExecutor, worker_log_group=group, worker_log_stream_prefix="worker", queues=queues)
    logs = boto3.client("logs", region_name="us-east-1")
    logs.create_log_group(logGroupName=group)
    for prefix, task_id in (("worker-team-a", "c" * 32), ("worker", "d" * 32)):
        logs.create_log_stream(logGroupName=group, logStreamName=f"{prefix}/{CONTAINER}/{task_id}")
        logs.put_log_events(logGroupName=group, logStreamName=f"{prefix}/{CONTAINER}/{task_id}",
                            logEvents=[{"timestamp": int(time.time() * 1000), "message": f"from {prefix}"}])
    arn = "arn:aws:ecs:us-east-1:123456789012:task/airflow/{}"
    team = _Ti(arn.format("c" * 32))
    team.queue = "team-a"
    sources, texts = ex.get_task_log(team, 1)
    assert f"worker-team-a/{CONTAINER}/{'c' * 32}" in sources[0] and texts == ["from worker-team-a\n"]
    for queue in ("large", "default"):  # a size-only queue and Airflow's default keep the executor's prefix
        other = _Ti(arn.format("d" * 32))
        other.queue = queue
        assert ex.get_task_log(other, 1)[1] == ["from worker\n"]


def test_get_task_log_without_log_group_is_disabled(aws, make_executor):
    ex = make_executor(EcsFargateExecutor)
    assert ex.get_task_log(_Ti("arn:aws:ecs:us-east-1:123456789012:task/airflow/x"), 1) == ([], [])


def test_empty_executor_config_needs_no_botocore_model():
    """The heartbeat checks every queued task's executor_config; the usual empty one must cost
    nothing (loading botocore's ECS model the first time took 0.18-1 s inside the first heartbeat
    of `make bench`)."""
    from airflow_ecs_fargate import task_config

    task_config.run_task_parameters.cache_clear()
    task_config.task_override_parameters.cache_clear()
    assert task_config.executor_config_errors({}) == [] and task_config.executor_config_errors(None) == []
    assert task_config.run_task_parameters.cache_info().currsize == 0
    assert task_config.task_override_parameters.cache_info().currsize == 0


def test_a_team_queue_launches_its_own_task_definition(aws, make_executor):
    """Issue 19 item 4: a queue with ``task_definition`` (a team queue: its own task role) is
    launched with that revision; other queues keep the executor's task definition."""
    team = aws.ecs.register_task_definition(
        family="airflow-dev-worker-team-a", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        cpu="1024", memory="2048",
        containerDefinitions=[{"name": "worker", "image": "airflow:test", "memory": 2048, "essential": True}],
    )["taskDefinition"]["taskDefinitionArn"]
    queues = json.dumps({"team-a": {"cpu": 1024, "memory": 2048, "task_definition": team}, "large": {"cpu": 2048, "memory": 8192}})
    ex = make_executor(EcsFargateExecutor, queues=queues)
    for queue in ("team-a", "large", "default"):
        w = make_workload(task_id=f"t-{queue}")
        w.ti.queue = queue
        ex.queue_workload(w, session=None)
    settle(ex)
    ids = ("t-team-a", "t-large", "t-default")
    launched = {next(t for t in ids if t in json.dumps(call["overrides"])): call["taskDefinition"] for call in ex.ecs.of("run_task")}
    assert launched == {"t-team-a": team, "t-large": TASK_FAMILY, "t-default": TASK_FAMILY}


def test_a_queue_task_definition_must_be_a_name_or_arn(aws, make_executor):
    with pytest.raises(ValueError) as caught:
        make_executor(EcsFargateExecutor, queues='{"team-a": {"task_definition": 3}}')
    assert "team-a" in str(caught.value) and "task_definition" in str(caught.value)
