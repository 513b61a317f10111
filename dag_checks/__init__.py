"""Checks a DAG folder and the image's extra packages before they ship.

``python -m dag_checks check DIR`` imports every DAG file of ``DIR`` with Airflow's own ``DagBag``
(the parser the dag-processor runs), in the project's virtualenv, after verifying that the
virtualenv has the image's exact Airflow and provider versions, and fails on import errors
(file, line, error), cycles, tasks on a pool or queue the deployment does not have, and references
to the variable of an ECS job it does not configure.
``python -m dag_checks requirements`` checks ``docker/requirements.txt`` against the pins of
``local_ecs/base_image/requirements.lock``. README, "Writing DAGs", has the commands.
"""
