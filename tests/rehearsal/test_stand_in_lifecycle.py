"""The AWS stand-in over a running rehearsal: a second synthesis deployed over the first (the
upgrade and image-rollout scenarios), and one stand-in per process. These tests start their own
stand-ins, so they live apart from ``test_aws.py``, whose module-wide stand-in enforces IAM."""

from __future__ import annotations

import pytest

from local_ecs.assembly import CloudAssembly, StandIns
from local_ecs.aws import AwsStandIn


def test_a_second_synthesis_numbers_its_revisions_after_those_registered(cdk_out):
    """A deploy over a running rehearsal (the upgrade and rollout scenarios) registers new
    revisions: ``Ref`` of each must be the number ECS gives it after the ACTIVE and INACTIVE ones
    already there (moto lists none for status ALL, so the first version predicted :1 again)."""
    from local_ecs.assembly import Resolver

    assembly = CloudAssembly(cdk_out())
    stand_ins = StandIns(database_port=6543)
    stand_in = AwsStandIn(assembly, stand_ins)
    stand_in.start()
    try:
        stand_in.provision()
        scheduler = next(k for k in assembly.stack("Airflow").of_type("AWS::ECS::TaskDefinition") if k.startswith("Scheduler"))
        first = stand_ins.refs[("Airflow", scheduler)]
        stand_in.client("ecs").deregister_task_definition(taskDefinition=first)  # CloudFormation's clean-up
        stand_in.resolver = Resolver(assembly, stand_ins)
        stand_in.number_task_definition_revisions()
        second = stand_ins.refs[("Airflow", scheduler)]
        assert second == first[: first.rindex(":")] + ":2"
        stand_in.register_task_definitions()  # raises if ECS numbered any differently
    finally:
        stand_in.stop()


def test_a_second_stand_in_in_the_same_process_is_refused_and_leaves_the_first_running(cdk_out):
    """moto's backends and IAM enforcement are process-wide: a second stand-in beside an enforcing
    one was refused its own set-up requests (InvalidClientTokenId) and, stopped, reset the first's
    backends."""
    assembly = CloudAssembly(cdk_out())
    first = AwsStandIn(assembly, StandIns(database_port=6543))
    first.start()
    try:
        first.provision()
        first.enforce_iam()
        second = AwsStandIn(assembly, StandIns(database_port=6543))
        with pytest.raises(RuntimeError, match="another AWS stand-in is running"):
            second.start()
        second.stop()
        assert first.client("ecs").list_clusters()["clusterArns"]  # still provisioned, still authorized
    finally:
        first.stop()
    AwsStandIn(assembly, StandIns(database_port=6543)).stop()  # a stand-in never started stops as a no-op
