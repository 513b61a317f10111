"""Names the dead-code pass (vulture, ``make lint``) reports but a framework uses: not dead code.

This file is read by vulture only; nothing imports it.
"""

# executor/airflow_ecs_fargate/emf_stats.py, EmfStatsClient.__init__: Airflow builds its
# [metrics] statsd_custom_client_path class with statsd.StatsClient's keywords (host, ipv6), which a
# client writing EMF lines to a stream accepts and ignores.
host
ipv6

# executor/airflow_ecs_fargate/executor.py, EcsFargateExecutor.end: the signature of Airflow's
# BaseExecutor.end, which the scheduler calls with the keyword.
heartbeat_interval
