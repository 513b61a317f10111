"""Every ECS API the executor can call is allowed by the synthesized scheduler policy.

The list of calls is read from the source, not written by hand: every method call in the bundled
executor package and in the amazon provider's ECS executor package (the stock executor is a
supported ``executor_class``, and ours inherits from it) whose name is an ECS client operation in
botocore's service model. Each call is then evaluated against the scheduler role's policy the way
IAM does: an Allow statement must match the action, the resource the request acts on (the
resource types of the Service Authorization Reference, Amazon ECS:
https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerservice.html)
and every condition of the statement.
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import airflow.providers.amazon.aws.executors.ecs as stock_ecs_executor
import botocore.session
import pytest
from botocore import xform_name

import airflow_ecs_fargate
from tests.cdk.conftest import resources_of

CLUSTER_NAME = "test-cluster"
TASK_ID = "0123456789abcdef0123456789abcdef"


def ecs_operations() -> dict[str, str]:
    """boto3 method name -> ECS API operation name, from botocore's ECS service model."""
    model = botocore.session.get_session().get_service_model("ecs")
    return {xform_name(op): op for op in model.operation_names}


def source_files() -> list[Path]:
    packages = [Path(airflow_ecs_fargate.__file__).parent, Path(stock_ecs_executor.__file__).parent]
    return sorted(f for p in packages for f in p.rglob("*.py"))


def ecs_calls_in_source() -> set[str]:
    """ECS operation names called anywhere in the executors' source (``<expr>.<method>(...)``)."""
    operations = ecs_operations()
    called = set()
    for path in source_files():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in operations:
                called.add(operations[node.func.attr])
    return called


def test_the_scan_finds_the_calls_we_know_of():
    # Guards the scanner itself: if it found nothing, the policy test below would pass vacuously.
    assert {"RunTask", "DescribeTasks", "StopTask", "DescribeTaskDefinition"} <= ecs_calls_in_source()


class _Resolver:
    """Turn a template's intrinsic functions into the concrete strings a deployment would see."""

    def __init__(self, template: dict, account: str, region: str, cluster_logical_id: str):
        self.template, self.account, self.region = template, account, region
        self.cluster_logical_id = cluster_logical_id

    def __call__(self, value):
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            return [self(v) for v in value]
        if "Fn::Join" in value:
            sep, parts = value["Fn::Join"]
            return sep.join(self(p) for p in parts)
        if "Ref" in value:
            ref = value["Ref"]
            pseudo = {"AWS::Partition": "aws", "AWS::Region": self.region, "AWS::AccountId": self.account}
            if ref in pseudo:
                return pseudo[ref]
            if ref == self.cluster_logical_id:
                return CLUSTER_NAME
            return f"<{ref}>"
        if "Fn::GetAtt" in value:
            logical, attr = value["Fn::GetAtt"]
            if logical == self.cluster_logical_id and attr == "Arn":
                return self.cluster_arn
            if self.template["Resources"][logical]["Type"] == "AWS::IAM::Role" and attr == "Arn":
                return f"arn:aws:iam::{self.account}:role/{logical}"
            # Other resources (buckets, log groups): a value no ECS request can match.
            return f"<{logical}.{attr}>"
        if "Fn::ImportValue" in value:
            # Another stack's resource (the DB and fernet key secrets): no ECS request matches it.
            return f"<import {value['Fn::ImportValue']}>"
        raise AssertionError(f"unresolved intrinsic {value}")

    @property
    def cluster_arn(self) -> str:
        return f"arn:aws:ecs:{self.region}:{self.account}:cluster/{CLUSTER_NAME}"


def _listify(value) -> list:
    return value if isinstance(value, list) else [value]


def _conditions_hold(conditions: dict, context: dict[str, str]) -> bool:
    """Strict: a condition operator or key this evaluator does not know never holds."""
    for operator, tests in conditions.items():
        for key, expected in tests.items():
            if key not in context:
                return False
            actual, expected = context[key], _listify(expected)
            if operator in ("ArnEquals", "ArnLike", "StringLike"):
                if not any(fnmatch.fnmatchcase(actual, e) for e in expected):
                    return False
            elif operator == "StringEquals":
                if actual not in expected:
                    return False
            else:
                return False
    return True


def allowed(statements: list[dict], action: str, resource: str, context: dict[str, str]) -> bool:
    """Whether an Allow statement grants ``action`` on ``resource`` under ``context`` (no Deny here)."""
    for s in statements:
        if s["Effect"] != "Allow":
            continue
        if not any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in _listify(s["Action"])):
            continue
        if not any(fnmatch.fnmatchcase(resource, r) for r in _listify(s["Resource"])):
            continue
        if _conditions_hold(s.get("Condition", {}), context):
            return True
    return False


def scheduler_policy(synthesized) -> tuple[list[dict], _Resolver, dict]:
    t = synthesized.template("cluster").to_json()
    policy = next(v for k, v in resources_of(t, "AWS::IAM::Policy").items() if k.startswith("ServiceRolesScheduler"))
    (cluster_id,) = [k for k in resources_of(t, "AWS::ECS::Cluster") if k.startswith("Cluster")]
    resolve = _Resolver(t, "123456789012", synthesized.config.region or "eu-west-1", cluster_id)
    statements = [
        {**s, "Resource": resolve(s["Resource"]), "Condition": {op: {k: resolve(v) for k, v in kv.items()} for op, kv in s.get("Condition", {}).items()}}
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    return statements, resolve, t


def request_of(operation: str, resolve: _Resolver, template: dict) -> tuple[str, dict[str, str]]:
    """The resource ARN and condition context of one executor call, as IAM evaluates it.

    Resource types per action from the Service Authorization Reference (Amazon ECS): an action
    with no resource type is authorized against ``*`` only.
    """
    prefix = f"arn:aws:ecs:{resolve.region}:{resolve.account}"
    (family,) = [
        definition["Properties"]["Family"]
        for logical_id, definition in resources_of(template, "AWS::ECS::TaskDefinition").items()
        if logical_id.startswith("WorkersTaskDefinition")
    ]
    task_arn = f"{prefix}:task/{CLUSTER_NAME}/{TASK_ID}"
    requests = {
        "RunTask": (f"{prefix}:task-definition/{family}:7", {"ecs:cluster": resolve.cluster_arn}),
        "DescribeTasks": (task_arn, {"ecs:cluster": resolve.cluster_arn}),
        "StopTask": (task_arn, {"ecs:cluster": resolve.cluster_arn}),
        "DescribeClusters": (resolve.cluster_arn, {}),
        "DescribeTaskDefinition": ("*", {}),
    }
    if operation not in requests:
        raise AssertionError(
            f"the executor calls ecs:{operation}; add its resource type (Service Authorization "
            "Reference) to request_of and grant it in WorkerTaskDefinition.grant_launch"
        )
    return requests[operation]


@pytest.mark.parametrize("name", ["dev", "prod", "no-nat", "ecs-exec"])
@pytest.mark.parametrize("operation", sorted(ecs_calls_in_source()))
def test_scheduler_may_call_every_ecs_api_the_executor_calls(synth, name, operation):
    statements, resolve, template = scheduler_policy(synth(name))
    resource, context = request_of(operation, resolve, template)
    assert allowed(statements, f"ecs:{operation}", resource, context), (
        f"the scheduler role may not call ecs:{operation} on {resource}"
    )


def test_run_task_may_pass_exactly_the_worker_roles(dev):
    # RunTask's dependent action: iam:PassRole on the task definition's task and execution roles.
    statements, resolve, template = scheduler_policy(dev)
    roles = list(resources_of(template, "AWS::IAM::Role"))
    to_ecs = {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    passable = {r for r in roles if allowed(statements, "iam:PassRole", f"arn:aws:iam::{resolve.account}:role/{r}", to_ecs)}
    assert passable == {r for r in roles if r.startswith(("WorkersTaskRole", "WorkersExecutionRole"))}
    assert len(passable) == 2
    to_ec2 = {"iam:PassedToService": "ec2.amazonaws.com"}
    assert not any(allowed(statements, "iam:PassRole", f"arn:aws:iam::{resolve.account}:role/{r}", to_ec2) for r in roles)


def test_only_describe_task_definition_is_granted_on_every_resource(dev):
    # The cdk-nag IAM5 Resource::* acknowledgement on the scheduler policy covers this one action.
    statements, _, _ = scheduler_policy(dev)
    star = [a for s in statements if "*" in _listify(s["Resource"]) for a in _listify(s["Action"])]
    assert star == ["ecs:DescribeTaskDefinition"]
