"""The ECS executor for Airflow 3 on Fargate that this project bundles, and its helpers."""
