"""Metrics, dashboard and alarms of one deployment.

Route of Airflow's metrics: every Airflow container runs Airflow's StatsD logger with the bundled
``airflow_ecs_fargate.emf_stats.EmfStatsClient`` (``[metrics] statsd_custom_client_path``), which
prints each allow-listed stat as a CloudWatch embedded metric format (EMF) record on stdout; the
containers' awslogs driver already ships stdout to CloudWatch Logs, which extracts the metrics.
No CloudWatch agent or OpenTelemetry collector sidecar is needed, so no second image: the
rehearsal runs every container from the project image with no registry reachable, and a sidecar
with an external image could not run there. Namespace ``Airflow``, one dimension
``Deployment = <project>-<stage>``: no per-DAG or per-task dimension, so the number of billed
custom metrics is the number of names in :data:`AIRFLOW_METRICS`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from airflow_ecs_fargate import metric_names
from aws_cdk import Duration, TimeZone
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from app_config.model import OfficeHoursConfig
from constructs_lib.scaling import api_call_schedule

#: CloudWatch namespace of the Airflow metrics.
NAMESPACE = "Airflow"
#: The bundled executor's counters (their one home: airflow_ecs_fargate.metric_names).
EXECUTOR_COUNTERS = metric_names.COUNTERS
#: Airflow's StatsD names that are sent (Airflow's metrics reference, "Metrics" in the Airflow
#: docs): scheduler heartbeat, executor slots and tasks, task outcomes and duration, DAG parsing.
AIRFLOW_METRICS = (
    "scheduler_heartbeat",
    "executor.open_slots",
    "executor.queued_tasks",
    "executor.running_tasks",
    "ti_failures",
    "ti_successes",
    "task.duration",
    "dag_processing.total_parse_time",
    *EXECUTOR_COUNTERS,
)
#: Alarm thresholds (per 5 minutes unless said otherwise).
TASK_FAILURES_BURST = 5
SUBMIT_FAILURES_BURST = 5
ALB_5XX_BURST = 10
#: FreeStorageSpace alarm: below this share of the allocated storage (bytes compared).
FREE_STORAGE_SHARE = 0.10
#: Period of every metric on the alarms and the dashboard.
PERIOD = Duration.minutes(5)
#: Width of a dashboard graph (half the dashboard's 24 columns).
WIDGET_WIDTH = 12
#: Minutes after office hours start before the silenced alarms notify again: longer than the
#: longest alarm window (15 minutes, ``<Service>BelowDesired``) plus a service's start (init
#: container, health check start period 240 s), so an alarm returns to OK while still silent.
ALARM_WAKE_GRACE_MINUTES = 30


def shift_cron(expression: str, minutes: int) -> str | None:
    """Return the AWS ``cron(...)`` ``expression`` moved ``minutes`` later, or None.

    Only expressions whose minutes field is one number and whose hours field lists numbers or
    ranges (``7``, ``7,13``, ``7-9``) are moved; None when the shift is not expressible that way
    (another minutes form, or an hour past 23, which would change the day fields).

    :param expression: e.g. ``cron(0 7 ? * MON-FRI *)`` (six fields, AWS's form).
    :param minutes: 0 to 59.
    """
    match = re.fullmatch(r"cron\((\S+) (\S+) (.+)\)", expression.strip())
    if not match or not match.group(1).isdigit() or not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", match.group(2)):
        return None
    total = int(match.group(1)) + minutes
    carry, minute = divmod(total, 60)
    hours = re.sub(r"\d+", lambda m: str(int(m.group(0)) + carry), match.group(2))
    if any(int(h) > 23 for h in re.findall(r"\d+", hours)):
        return None
    return f"cron({minute} {hours} {match.group(3)})"


def metrics_environment(deployment: str) -> dict[str, str]:
    """The environment that turns Airflow's metrics into EMF records (every Airflow container).

    :param deployment: the ``Deployment`` dimension, e.g. ``airflow-dev``.
    """
    allow = ",".join(f"^{re.escape(name)}$" for name in AIRFLOW_METRICS)
    return {
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_CUSTOM_CLIENT_PATH": "airflow_ecs_fargate.emf_stats.EmfStatsClient",
        "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
        "AIRFLOW__METRICS__METRICS_ALLOW_LIST": allow,
        "AIRFLOW_METRICS_NAMESPACE": NAMESPACE,
        "AIRFLOW_METRICS_DEPLOYMENT": deployment,
    }


def load_balancer_5xx(load_balancer: elbv2.ApplicationLoadBalancer) -> cloudwatch.MathExpression:
    """HTTP 5xx responses of the load balancer and of its targets, per 5 minutes."""
    return cloudwatch.MathExpression(
        expression="FILL(elb, 0) + FILL(target, 0)",
        using_metrics={
            "elb": load_balancer.metrics.http_code_elb(elbv2.HttpCodeElb.ELB_5XX_COUNT, period=PERIOD, statistic="Sum"),
            "target": load_balancer.metrics.http_code_target(
                elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=PERIOD, statistic="Sum"
            ),
        },
        period=PERIOD,
        label="ALB 5xx",
    )


def _load_balancer_and_database_widgets(
    load_balancer: elbv2.ApplicationLoadBalancer, alb5xx: cloudwatch.MathExpression, database: rds.DatabaseInstance
) -> list[cloudwatch.IWidget]:
    """The dashboard's rows of the load balancer (5xx, response time) and the metadata DB."""
    return [
        cloudwatch.GraphWidget(title="Load balancer: 5xx", width=WIDGET_WIDTH, left=[alb5xx]),
        cloudwatch.GraphWidget(
            title="Load balancer: target response time (s)", width=WIDGET_WIDTH,
            left=[load_balancer.metrics.target_response_time(period=PERIOD, statistic="p90")],
        ),
        cloudwatch.GraphWidget(
            title="Metadata DB: CPU % and connections", width=WIDGET_WIDTH,
            left=[database.metric_cpu_utilization(period=PERIOD)],
            right=[database.metric_database_connections(period=PERIOD)],
        ),
        cloudwatch.GraphWidget(
            title="Metadata DB: free storage (bytes)", width=WIDGET_WIDTH,
            left=[database.metric_free_storage_space(period=PERIOD, statistic="Minimum")],
        ),
    ]


@dataclass(frozen=True)
class MonitoredService:
    """A Fargate service on the dashboard and under the below-desired-count alarm."""

    label: str
    service: ecs.FargateService
    desired_count: int


class DeploymentMonitoring(Construct):
    """The dashboard, the alarms and their SNS topic.

    Alarms (each notifies the topic on ALARM and OK):

    - ``SchedulerSilent``: no ``scheduler_heartbeat`` for 10 minutes (missing data breaches);
    - ``<Service>BelowDesired``: with Container Insights, running < desired tasks for 15 minutes;
      without it, no CPU datapoint from the service for 15 minutes (no task running);
    - ``DbStorageLow``: RDS FreeStorageSpace below 10 % of the allocated storage;
    - ``TaskFailures`` / ``SubmitFailures``: at least 5 failed Airflow tasks / failed RunTask
      attempts in 5 minutes;
    - ``Alb5xx``: at least 10 HTTP 5xx responses (load balancer's and targets') in 5 minutes.

    :param deployment: ``<project>-<stage>``, the ``Deployment`` dimension.
    :param airflow_metrics: whether the Airflow metrics are sent (alarms and widgets on them).
    :param container_insights: whether the cluster has Container Insights (running vs desired).
    :param alarm_email: e-mail address subscribed to the topic, or None.
    :param dashboard: create the dashboard.
    :param office_hours: the office hours, or None.
    :param sleeping: labels of the services that office hours stop (``ApiServer``; with scope
        ``environment`` every service). Their health alarms (``<Service>BelowDesired``,
        ``SchedulerSilent`` for the scheduler, ``Alb5xx`` for the api-server: the load balancer
        answers 503 without targets) treat missing data as breaching, so they would fire every
        night: EventBridge Scheduler universal targets disable their actions at ``stop``
        (``cloudwatch:disableAlarmActions``) and enable them :data:`ALARM_WAKE_GRACE_MINUTES`
        after ``start`` (at ``start`` when :func:`shift_cron` cannot move the expression: then each
        returns to OK with a notification in the morning). A silent alarm still changes state.
    :ivar silenced: construct IDs of the alarms silenced outside office hours.
    :ivar topic: ``sns.Topic`` the alarms notify.
    :ivar alarms: ``{construct id: cloudwatch.Alarm}``.
    :ivar dashboard: ``cloudwatch.Dashboard`` or None.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployment: str,
        cluster_name: str,
        services: list[MonitoredService],
        load_balancer: elbv2.ApplicationLoadBalancer,
        database: rds.DatabaseInstance,
        allocated_storage_gib: int,
        airflow_metrics: bool,
        container_insights: bool,
        alarm_email: str | None,
        dashboard: bool,
        office_hours: OfficeHoursConfig | None = None,
        sleeping: frozenset[str] = frozenset(),
    ):
        super().__init__(scope, construct_id)
        self._deployment = deployment
        self._cluster_name = cluster_name
        self.topic = sns.Topic(self, "AlarmTopic", display_name=f"Airflow {deployment} alarms", enforce_ssl=True)
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        alb5xx = load_balancer_5xx(load_balancer)
        if airflow_metrics:
            self._add_airflow_alarms()
        self._add_service_alarms(services, container_insights=container_insights)
        self._add_database_alarm(database, allocated_storage_gib)
        self._add_load_balancer_alarm(alb5xx)

        self.silenced: list[str] = []
        if office_hours is not None and sleeping:
            self._silence_outside_office_hours(office_hours, sleeping)

        self.dashboard: cloudwatch.Dashboard | None = None
        if not dashboard:
            return
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.hours(6))
        self.dashboard.add_widgets(*self._service_widgets(services))
        if container_insights:
            self.dashboard.add_widgets(self._task_count_widget(services))
        self.dashboard.add_widgets(*_load_balancer_and_database_widgets(load_balancer, alb5xx, database))
        if airflow_metrics:
            self.dashboard.add_widgets(*self._airflow_widgets())
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", width=24, alarms=list(self.alarms.values()))
        )

    def _airflow_metric(self, name: str, statistic: str = "Sum", label: str | None = None) -> cloudwatch.Metric:
        """An Airflow metric of this deployment (namespace :data:`NAMESPACE`), over 5 minutes."""
        return cloudwatch.Metric(
            namespace=NAMESPACE,
            metric_name=name,
            dimensions_map={"Deployment": self._deployment},
            statistic=statistic,
            period=PERIOD,
            label=label or name,
        )

    def _service_metric(self, namespace: str, name: str, s: MonitoredService, statistic: str) -> cloudwatch.Metric:
        """An ECS metric of one service (``AWS/ECS`` or ``ECS/ContainerInsights``), over 5 minutes."""
        return cloudwatch.Metric(
            namespace=namespace,
            metric_name=name,
            dimensions_map={"ClusterName": self._cluster_name, "ServiceName": s.service.service_name},
            statistic=statistic,
            period=PERIOD,
            label=f"{s.label} {name}",
        )

    def _add_airflow_alarms(self) -> None:
        """``SchedulerSilent``, ``TaskFailures`` and ``SubmitFailures``, on Airflow's metrics."""
        self._alarm(
            "SchedulerSilent",
            self._airflow_metric("scheduler_heartbeat"),
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            periods=2,
            missing=cloudwatch.TreatMissingData.BREACHING,
            description="No scheduler heartbeat for 10 minutes: no scheduler is running its loop.",
        )
        self._alarm(
            "TaskFailures",
            self._airflow_metric("ti_failures"),
            threshold=TASK_FAILURES_BURST,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            periods=1,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            description=f"{TASK_FAILURES_BURST} or more Airflow task failures in 5 minutes.",
        )
        self._alarm(
            "SubmitFailures",
            self._airflow_metric("ecs_fargate.submit_failures"),
            threshold=SUBMIT_FAILURES_BURST,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            periods=1,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            description=f"{SUBMIT_FAILURES_BURST} or more failed RunTask attempts in 5 minutes "
            "(permissions, capacity, throttling: see the scheduler's log).",
        )

    def _add_service_alarms(self, services: list[MonitoredService], *, container_insights: bool) -> None:
        """``<Service>BelowDesired`` per service: running < desired tasks with Container Insights,
        else no CPU datapoint (no task running)."""
        for s in services:
            if container_insights:
                below = cloudwatch.MathExpression(
                    expression="desired - running",
                    using_metrics={
                        "desired": self._service_metric("ECS/ContainerInsights", "DesiredTaskCount", s, "Average"),
                        "running": self._service_metric("ECS/ContainerInsights", "RunningTaskCount", s, "Average"),
                    },
                    period=PERIOD,
                    label=f"{s.label} tasks missing",
                )
                self._alarm(
                    f"{s.label}BelowDesired",
                    below,
                    threshold=1,
                    comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    periods=3,
                    missing=cloudwatch.TreatMissingData.BREACHING,
                    description=f"{s.label}: fewer running tasks than desired for 15 minutes.",
                )
            else:
                self._alarm(
                    f"{s.label}BelowDesired",
                    self._service_metric("AWS/ECS", "CPUUtilization", s, "SampleCount"),
                    threshold=1,
                    comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                    periods=3,
                    missing=cloudwatch.TreatMissingData.BREACHING,
                    description=f"{s.label}: no running task for 15 minutes (no CPU datapoint; "
                    "Container Insights is off, so running vs desired is not measured).",
                )

    def _add_database_alarm(self, database: rds.DatabaseInstance, allocated_storage_gib: int) -> None:
        """``DbStorageLow``: free storage below :data:`FREE_STORAGE_SHARE` of the allocated GiB."""
        self._alarm(
            "DbStorageLow",
            database.metric_free_storage_space(period=PERIOD, statistic="Minimum"),
            threshold=allocated_storage_gib * FREE_STORAGE_SHARE * 1024**3,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            periods=1,
            missing=cloudwatch.TreatMissingData.MISSING,
            description=f"Metadata DB free storage below {FREE_STORAGE_SHARE:.0%} of "
            f"{allocated_storage_gib} GiB (autoscaling may be at its ceiling).",
        )

    def _add_load_balancer_alarm(self, alb5xx: cloudwatch.MathExpression) -> None:
        """``Alb5xx``: :data:`ALB_5XX_BURST` or more 5xx responses in 5 minutes."""
        self._alarm(
            "Alb5xx",
            alb5xx,
            threshold=ALB_5XX_BURST,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            periods=1,
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            description=f"{ALB_5XX_BURST} or more HTTP 5xx responses from the UI load balancer in 5 minutes.",
        )

    def _service_widgets(self, services: list[MonitoredService]) -> list[cloudwatch.IWidget]:
        """The dashboard's row of the services' CPU and memory."""
        return [
            cloudwatch.GraphWidget(
                title="Services: CPU %", width=WIDGET_WIDTH,
                left=[self._service_metric("AWS/ECS", "CPUUtilization", s, "Average") for s in services],
            ),
            cloudwatch.GraphWidget(
                title="Services: memory %", width=WIDGET_WIDTH,
                left=[self._service_metric("AWS/ECS", "MemoryUtilization", s, "Average") for s in services],
            ),
        ]

    def _task_count_widget(self, services: list[MonitoredService]) -> cloudwatch.IWidget:
        """The dashboard's row of running vs desired tasks (Container Insights)."""
        return cloudwatch.GraphWidget(
            title="Services: running vs desired tasks", width=24,
            left=[m for s in services for m in (
                self._service_metric("ECS/ContainerInsights", "RunningTaskCount", s, "Average"),
                self._service_metric("ECS/ContainerInsights", "DesiredTaskCount", s, "Average"),
            )],
        )

    def _airflow_widgets(self) -> list[cloudwatch.IWidget]:
        """The dashboard's rows of Airflow's metrics."""
        airflow = self._airflow_metric
        return [
            cloudwatch.GraphWidget(title="Scheduler heartbeats", width=WIDGET_WIDTH, left=[airflow("scheduler_heartbeat")]),
            cloudwatch.GraphWidget(
                title="Executor: open slots, queued, running", width=WIDGET_WIDTH,
                left=[airflow(n, "Average") for n in ("executor.open_slots", "executor.queued_tasks", "executor.running_tasks")],
            ),
            cloudwatch.GraphWidget(
                title="Task instances: successes and failures", width=WIDGET_WIDTH,
                left=[airflow("ti_successes"), airflow("ti_failures")],
            ),
            cloudwatch.GraphWidget(
                title="Task duration (ms)", width=WIDGET_WIDTH,
                left=[airflow("task.duration", "Average", "average"), airflow("task.duration", "Maximum", "maximum")],
            ),
            cloudwatch.GraphWidget(
                title="DAG processing: total parse time (s)", width=WIDGET_WIDTH,
                left=[airflow("dag_processing.total_parse_time", "Maximum")],
            ),
            cloudwatch.GraphWidget(
                title="ECS executor: RunTask calls and failures", width=WIDGET_WIDTH,
                left=[airflow(n) for n in EXECUTOR_COUNTERS],
            ),
        ]

    def _silence_outside_office_hours(self, config: OfficeHoursConfig, sleeping: frozenset[str]) -> None:
        """Disable the actions of the sleeping services' alarms at ``stop``, enable them after ``start``."""
        silenced = [f"{label}BelowDesired" for label in sorted(sleeping)]
        if "Scheduler" in sleeping:
            silenced.append("SchedulerSilent")
        if "ApiServer" in sleeping:
            silenced.append("Alb5xx")
        self.silenced = [alarm_id for alarm_id in silenced if alarm_id in self.alarms]
        alarms = [self.alarms[alarm_id] for alarm_id in self.silenced]
        time_zone = TimeZone.of(config.timezone)
        wake = shift_cron(config.start, ALARM_WAKE_GRACE_MINUTES) or config.start
        for name, action, expression in (
            ("SilenceAlarms", "disableAlarmActions", config.stop),
            ("WakeAlarms", "enableAlarmActions", wake),
        ):
            api_call_schedule(
                self,
                name,
                description=f"Office hours: {action} of the alarms of the services that sleep",
                expression=expression,
                time_zone=time_zone,
                service="cloudwatch",
                action=action,
                request={"AlarmNames": [a.alarm_name for a in alarms]},
                resources=[a.alarm_arn for a in alarms],
            )

    def _alarm(self, construct_id, metric, *, threshold, comparison, periods, missing, description) -> None:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            treat_missing_data=missing,
            alarm_description=description,
        )
        action = cw_actions.SnsAction(self.topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        self.alarms[construct_id] = alarm
