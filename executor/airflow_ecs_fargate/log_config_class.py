"""The ``[logging] logging_config_class`` value of the api-server, without importing Airflow.

The CDK app imports this name (it may import the executor package, never the reverse);
:mod:`airflow_ecs_fargate.log_reader` holds the configuration it names.
"""

#: Dotted path of the logging configuration with the DEFERRED-aware task log reader.
LOGGING_CONFIG_CLASS = "airflow_ecs_fargate.log_reader.LOGGING_CONFIG"
