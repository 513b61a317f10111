"""``airflow-ecs``: the operations CLI of the Airflow on ECS Fargate deployment.

It knows a deployment only through what CloudFormation and ECS report (the stacks' outputs, the
services' task definitions and network settings), never through the CDK app, so it works from any
machine with AWS credentials and follows the templates when they change.
"""
