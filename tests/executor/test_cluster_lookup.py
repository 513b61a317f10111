"""Defect 9: the default-launch-type lookup uses the configured connection and region."""

from __future__ import annotations

import pytest

from airflow_ecs_fargate.executor import EcsFargateExecutor
from tests.executor.conftest import BOTH_STOCK_FAILS, make_ecs, make_workload, settle


@pytest.fixture
def eu_cluster(aws, moto_session):
    """The cluster lives only in eu-west-1; the process default region (AWS_DEFAULT_REGION) is us-east-1."""
    aws.backend("us-east-1").reset()
    return make_ecs("eu-west-1", *moto_session("eu-west-1"))


@pytest.mark.parametrize("cls", BOTH_STOCK_FAILS)
def test_lookup_uses_configured_region(cls, eu_cluster, make_executor):
    ex = make_executor(
        cls,
        launch_type=None,
        region_name="eu-west-1",
        subnets=eu_cluster.subnet,
        security_groups=eu_cluster.security_group,
    )  # stock: bare EcsHook() asks us-east-1, finds no cluster -> IndexError at construction
    w = make_workload()
    ex.queue_workload(w, session=None)
    settle(ex)
    assert ex.event_buffer[w.ti.key][0] == "running"
    assert ex.ecs.of("run_task")[0]["launchType"] == "FARGATE"
    assert ex.ecs.of("describe_clusters")  # the lookup went through the configured client
    assert ":eu-west-1:" in ex.event_buffer[w.ti.key][1]


def test_lookup_is_lazy_and_keeps_cluster_default_strategy(moto_session, make_executor):
    make_ecs(
        "eu-west-1",
        *moto_session("eu-west-1"),
        capacityProviders=["FARGATE", "FARGATE_SPOT"],
        defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}],
    )
    net = moto_session("eu-west-1")
    ex = make_executor(EcsFargateExecutor, launch_type=None, region_name="eu-west-1", subnets=net[0], security_groups=net[1])
    assert ex.ecs.calls == []  # construction made no AWS call
    w = make_workload()
    ex.queue_workload(w, session=None)
    settle(ex)
    sent = ex.ecs.of("run_task")[0]
    assert "launchType" not in sent and "capacityProviderStrategy" not in sent
    assert ex.event_buffer[w.ti.key][0] == "running"
