"""Scheduled and automatic scaling of the Airflow services.

- Office hours (``office_hours_*`` keys): Application Auto Scaling scheduled actions set a
  service's task count to 0 at ``stop`` and back to its bounds at ``start``, as the seed's
  ``put-scheduled-action`` example does for the web server
  (https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-scheduled-scaling.html).
  With scope ``environment`` the RDS instance is also stopped and started by EventBridge Scheduler
  universal targets (``aws-sdk:rds:stopDBInstance`` / ``startDBInstance``,
  https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-targets-universal.html).
- Automatic (``api_server_scale_on``): target tracking of the api-server's task count on average
  CPU utilization or on ALB requests per target.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, TimeZone
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_rds as rds
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from constructs import Construct

from app_config.model import ApiServerAutoScalingConfig, DeploymentConfig, OfficeHoursConfig

#: Seconds between scaling steps of the api-server's target tracking.
SCALE_OUT_COOLDOWN_SECONDS = 60
SCALE_IN_COOLDOWN_SECONDS = 300


@dataclass(frozen=True)
class ScaledService:
    """A service and the task count bounds it returns to when office hours start.

    :param service: the ECS service.
    :param min_count: fewest tasks during office hours.
    :param max_count: most tasks during office hours.
    """

    service: ecs.FargateService
    min_count: int
    max_count: int


def scaled_components(config: DeploymentConfig) -> frozenset[str]:
    """The services (construct IDs) whose task count Application Auto Scaling owns under ``config``.

    The api-server with ``api_server_scale_on`` or any office hours; the scheduler, dag-processor
    and triggerer with ``office_hours_scope=environment``. Such a service must not carry a
    ``DesiredCount`` in its template: CloudFormation sends it again on every update of the service
    and it overrides what Application Auto Scaling set (the services would wake up at every
    deploy; a scaled-out api-server would drop back). Without it, a new service starts with
    CloudFormation's default of one task and registering the scalable target brings it into the
    target's bounds: "RegisterScalableTarget ... changes the resource's current capacity to a
    value that is inside of this range" (Application Auto Scaling API reference).
    """
    scaled: set[str] = set()
    if config.api_server_autoscaling or config.office_hours:
        scaled.add("ApiServer")
    if config.office_hours and config.office_hours.scope == "environment":
        scaled.update(("Scheduler", "DagProcessor", "Triggerer"))
    return frozenset(scaled)


def api_server_autoscaling(
    scalable: ecs.ScalableTaskCount,
    config: ApiServerAutoScalingConfig,
    target_group: elbv2.IApplicationTargetGroup,
) -> None:
    """Add target tracking on CPU (percent) or requests per target (per minute) to ``scalable``."""
    cooldowns = dict(
        scale_in_cooldown=Duration.seconds(SCALE_IN_COOLDOWN_SECONDS),
        scale_out_cooldown=Duration.seconds(SCALE_OUT_COOLDOWN_SECONDS),
    )
    if config.metric == "cpu":
        scalable.scale_on_cpu_utilization(
            "CpuTracking", target_utilization_percent=config.target_cpu_percent, **cooldowns
        )
    elif config.metric == "requests":
        scalable.scale_on_request_count(
            "RequestTracking",
            requests_per_target=config.target_requests_per_task,
            target_group=target_group,
            **cooldowns,
        )
    else:
        raise ValueError(f"unknown api-server scaling metric {config.metric!r}; use cpu or requests")


def api_call_schedule(
    scope: Construct,
    construct_id: str,
    *,
    description: str,
    expression: str,
    time_zone: TimeZone,
    service: str,
    action: str,
    request: dict,
    resources: list[str],
) -> scheduler.Schedule:
    """An EventBridge Scheduler schedule that calls one AWS API action (a universal target,
    ``aws-sdk:<service>:<action>``, https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-targets-universal.html)
    with ``request`` as its input, three retries, and a role allowed that action on ``resources`` only.

    :param expression: the schedule, a ``cron(...)`` expression (AWS's six-field form).
    :param service: the API's service, e.g. ``rds``, ``cloudwatch``.
    :param action: the API action in camel case, e.g. ``stopDBInstance`` (IAM's action is the
        same name capitalized: ``rds:StopDBInstance``).
    """
    return scheduler.Schedule(
        scope,
        construct_id,
        description=description,
        schedule=scheduler.ScheduleExpression.expression(expression, time_zone),
        target=scheduler_targets.Universal(
            service=service,
            action=action,
            input=scheduler.ScheduleTargetInput.from_object(request),
            policy_statements=[
                iam.PolicyStatement(actions=[f"{service}:{action[0].upper()}{action[1:]}"], resources=resources)
            ],
            retry_attempts=3,
        ),
    )


class OfficeHours(Construct):
    """Scale ``services`` to zero outside office hours; with a ``database``, stop it too.

    :param config: the cron expressions (AWS's six-field form) and their time zone.
    :param services: construct ID (PascalCase) -> service, scalable task count and bounds.
    :param database: the RDS instance to stop at ``stop`` and start at ``start``, or None.
    :ivar schedules: the EventBridge Scheduler schedules (``StartDatabase``, ``StopDatabase``),
        empty without a database.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: OfficeHoursConfig,
        services: dict[str, tuple[ScaledService, ecs.ScalableTaskCount]],
        database: rds.IDatabaseInstance | None = None,
    ):
        super().__init__(scope, construct_id)
        time_zone = TimeZone.of(config.timezone)
        for name, (scaled, scalable) in services.items():
            scalable.scale_on_schedule(
                f"{name}Stop",
                schedule=appscaling.Schedule.expression(config.stop),
                time_zone=time_zone,
                min_capacity=0,
                max_capacity=0,
            )
            scalable.scale_on_schedule(
                f"{name}Start",
                schedule=appscaling.Schedule.expression(config.start),
                time_zone=time_zone,
                min_capacity=scaled.min_count,
                max_capacity=scaled.max_count,
            )
        self.schedules: dict[str, scheduler.Schedule] = {}
        if database is None:
            return
        for name, action, expression in (
            ("StopDatabase", "stopDBInstance", config.stop),
            ("StartDatabase", "startDBInstance", config.start),
        ):
            self.schedules[name] = api_call_schedule(
                self,
                name,
                description=f"Office hours: {action} of the Airflow metadata database",
                expression=expression,
                time_zone=time_zone,
                service="rds",
                action=action,
                request={"DbInstanceIdentifier": database.instance_identifier},
                resources=[database.instance_arn],
            )
