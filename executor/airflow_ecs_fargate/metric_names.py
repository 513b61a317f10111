"""Names of the metrics the bundled executor emits: one home for the executor and the CDK app.

Dependency-free (no Airflow, no CDK): ``constructs_lib/monitoring.py`` imports it to allow-list
the names and to alarm on them; :mod:`airflow_ecs_fargate.metrics` emits them. Names are StatsD
names, before ``[metrics] statsd_prefix``.

Counters of this executor:

- :data:`RUN_TASK_CALLS`: RunTask API calls made (retries and Spot fallbacks included);
- :data:`THROTTLES`: RunTask attempts throttled by ECS (ThrottlingException);
- :data:`CAPACITY_FAILURES`: RunTask attempts with no Fargate (or Fargate Spot) capacity;
- :data:`SPOT_FALLBACKS`: launches that Spot could not place and on-demand took;
- :data:`SUBMIT_FAILURES`: RunTask attempts that launched nothing, whatever the reason.

Kept from the amazon provider's ``AwsEcsExecutor`` (provider 9.39.0, its only metric):

- :data:`ADOPT_DURATION`: timer (ms) of ``try_adopt_task_instances``, tag ``team_name`` when the
  executor belongs to a team.
"""

from __future__ import annotations

RUN_TASK_CALLS = "ecs_fargate.run_task_calls"
THROTTLES = "ecs_fargate.throttles"
CAPACITY_FAILURES = "ecs_fargate.capacity_failures"
SPOT_FALLBACKS = "ecs_fargate.spot_fallbacks"
SUBMIT_FAILURES = "ecs_fargate.submit_failures"
#: Every counter above, for allow lists and dashboards.
COUNTERS = (RUN_TASK_CALLS, THROTTLES, CAPACITY_FAILURES, SPOT_FALLBACKS, SUBMIT_FAILURES)

ADOPT_DURATION = "ecs_executor.adopt_task_instances.duration"
#: Metrics the stock executor emits, kept with their names and tags.
STOCK_METRICS = (ADOPT_DURATION,)
