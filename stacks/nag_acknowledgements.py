"""cdk-nag AwsSolutions findings that are acknowledged rather than fixed, each on the narrowest
construct, with the reason a reviewer needs. README "Security" lists them all.

A finding ID has the form ``AwsSolutions::<rule>`` or, for IAM findings,
``AwsSolutions::<rule>[<Action|Resource|Policy>::<what>]``.
"""

from __future__ import annotations

import re

import aws_cdk as cdk
from constructs import IConstruct

from app_config.model import DeploymentConfig
from constructs_lib.ecs_jobs import job_names
from constructs_lib.service_roles import COMPONENTS as SERVICE_ROLE_IDS

REASONS = {
    "S3_GRANT": (
        "Task logs: s3:GetObject (and s3:PutObject for the writers) only under task-logs/, never a "
        "delete; object keys carry DAG, run and task IDs known only at run time. The DAG bucket "
        "(dag_bundle=s3) is read with CDK's grant_read (s3:GetObject*, s3:List*), read-only."
    ),
    "ECS_TASKS": (
        "DescribeTasks and StopTask act on task ARNs that exist only after RunTask; the resource "
        "is limited to this cluster's tasks."
    ),
    "ECS_FAMILY": (
        "RunTask on any revision of the workers' task definition family: the executor names the "
        "family, so a new revision deploys without changing a cross-stack export."
    ),
    "ECS_DESCRIBE_TASK_DEFINITION": (
        "ecs:DescribeTaskDefinition supports no resource-level permission (Service Authorization "
        "Reference, Amazon ECS); the scheduler's executor reads which containers of a worker's "
        "task definition are essential. The statement grants that one read-only action."
    ),
    "ECR_AUTH": (
        "ecr:GetAuthorizationToken supports no resource-level permission; image pulls themselves "
        "are limited to the image's repository."
    ),
    "ECS_EXEC": (
        "ECS Exec (enable_ecs_exec): the ssmmessages channel actions support no resource-level "
        "permission, and session logs go to the exec log group's streams."
    ),
    "ECS2": (
        "Only non-secret Airflow settings are environment values: the DB credentials and fernet "
        "key are read from Secrets Manager by the _CMD helpers (the environment holds their ARNs), "
        "the JWT secret, API secret key and admin password are ECS secrets (docs/security.md)."
    ),
    "SMG4": (
        "Generated once and read at container start; rotating it needs Airflow's own procedure "
        "(e.g. airflow rotate-fernet-key, or a coordinated restart), see README Security."
    ),
    "RDS11": (
        "Port 5432 is reachable only from the Airflow services' security group; a non-default "
        "port adds no protection."
    ),
    "RDS_MONITORING_ROLE": (
        "RDS Enhanced Monitoring's role: the AWS managed AmazonRDSEnhancedMonitoringRole policy is "
        "what RDS documents for it (it writes only to the RDSOSMetrics log group)."
    ),
    "RDS3_DEV": "dev is cheap and destroyable; prod runs the DB Multi-AZ.",
    "RDS10_DEV": "dev is destroyable by design; prod enables deletion protection.",
    "RDS3_LEAN": "lean trades the standby for money: one single-AZ DB, destroyable like dev (README, Cost).",
    "RDS10_LEAN": "lean is destroyable by design, like dev; prod enables deletion protection.",
    "ECS4_OFF": (
        "container_insights=false (the lean default): Container Insights is billed as custom "
        "metrics per cluster and service; the services' CPU and memory still reach CloudWatch "
        "as the standard ECS service metrics."
    ),
    "EC23": (
        "The UI load balancer accepts exactly the CIDRs in ui_allowed_cidrs, set to 0.0.0.0/0 by "
        "the operator; the UI requires a login."
    ),
    "LOG_RETENTION_LAMBDA": (
        "CDK's LogRetention provider (sets the retention of the RDS log groups) writes its own "
        "logs with the AWS managed AWSLambdaBasicExecutionRole policy."
    ),
    "WORKER_LIVE_LOGS": (
        "The api-server reads a running task's log from its worker's awslogs stream; stream names "
        "end in the ECS task ID, unknown until RunTask, so the grant is every stream under the "
        "workers' prefix (and each team queue's worker-<queue> prefix) in the workers' log group, "
        "and only logs:GetLogEvents."
    ),
    "JOB_S3": (
        "An ECS job's task role gets CDK's bucket grant (s3:Abort* is part of grant_put) on exactly "
        "the data-bucket prefixes its configuration lists (jobs.<name>.s3_*_prefixes)."
    ),
    "JOB_FAMILY": (
        "The workers may RunTask any revision of the configured jobs' task definition families, in "
        "the jobs cluster only, so a new job revision deploys without a policy change."
    ),
    "JOB_TASKS": (
        "EcsRunTaskOperator follows and stops the job it started (DescribeTasks, StopTask); task "
        "ARNs exist only after RunTask, so the resource is the jobs cluster's tasks, a cluster that "
        "holds nothing but jobs (never the services' or workers' tasks)."
    ),
    "JOB_TASKS_DEFERRED": (
        "EcsRunTaskOperator(deferrable=True) hands the wait to the triggerer's TaskDoneTrigger "
        "(DescribeTasks only); task ARNs exist only after RunTask, so the resource is the jobs "
        "cluster's tasks, a cluster that holds nothing but jobs."
    ),
    "JOB_LIST_TASKS": (
        "EcsRunTaskOperator(reattach=True) calls ListTasks, which names no task; the statement is "
        "limited to the jobs cluster by its ecs:cluster condition."
    ),
    "JOB_LOGS": (
        "EcsRunTaskOperator reads the job's log stream, whose name ends in the task ID known only "
        "after RunTask; limited to the jobs' log groups and the job/ stream prefix."
    ),
    "JOB_ECS2": "A job's only environment value is the data bucket's name; jobs get no secret.",
    "ECS_SLR_LAMBDA": (
        "CDK's AwsCustomResource provider (creates the ECS service-linked role when the account "
        "has none) writes its own logs with the AWS managed AWSLambdaBasicExecutionRole policy."
    ),
    "CONNECTIONS_SECRETS": (
        "Airflow's SecretsManagerBackend reads <project>/<stage>/connections/<conn_id> and "
        "/variables/<key>: the names are the DAGs' connection ids and variable keys, and every "
        "secret ARN ends in a random suffix; GetSecretValue only, on the deployment's two prefixes."
    ),
    "TEAM_S3": (
        "A team queue's role reads and puts (never deletes) under the data bucket prefixes its "
        "worker_queues entry names; object keys below a prefix are the DAGs' own."
    ),
    "TEAM_SECRETS": (
        "A team queue's role reads (GetSecretValue) the Secrets Manager names under the prefixes "
        "its worker_queues entry names; every secret ARN ends in a random suffix."
    ),
    "TEAM_MANAGED_POLICY": (
        "An AWS managed policy the deployment's operator attached to a team queue's role by "
        "naming it in worker_queues (managed_policy_arns)."
    ),
    "ELB2_NO_REGION": (
        "ALB access logs need a concrete region (the bucket policy names the region's ELB "
        "account); set account and region in the configuration to enable them."
    ),
}


def _ack(construct: IConstruct, finding: str, reason: str) -> None:
    # The CDK CLI's validation report matches "<plugin>::<rule>"; cdk-nag's validate_scope (the
    # tests) matches the bare rule ID. Both name the same finding.
    cdk.Validations.of(construct).acknowledge(
        cdk.Acknowledgment(id=f"AwsSolutions::{finding}", reason=reason),
        cdk.Acknowledgment(id=finding, reason=reason),
    )


def _find(stack: cdk.Stack, path: str) -> IConstruct | None:
    node: IConstruct | None = stack
    for part in path.split("/"):
        node = node.node.try_find_child(part) if node is not None else None
    return node


def acknowledge_findings(stacks: dict[str, cdk.Stack], config: DeploymentConfig) -> None:
    """Acknowledge the accepted findings on the constructs of ``stacks`` (keys as returned by
    ``app.build_app``)."""
    airflow, cluster, database = stacks["airflow"], stacks["cluster"], stacks["database"]
    s3_actions = ["s3:GetObject*", "s3:GetBucket*", "s3:List*"]  # grant_read on the DAG bucket
    policies = [_find(cluster, f"ServiceRoles/{c}/DefaultPolicy") for c in SERVICE_ROLE_IDS]
    policies.append(_find(cluster, "Workers/TaskRole/DefaultPolicy"))
    teams = [queue for queue in config.executor.worker_queues if queue.is_team]
    team_policies = [_find(cluster, f"Workers/Queues/{queue.name}/DefaultPolicy") for queue in teams]
    policies += team_policies
    for policy in policies:
        assert policy is not None
        for action in s3_actions:
            _ack(policy, f"AwsSolutions-IAM5[Action::{action}]", REASONS["S3_GRANT"])
        _ack_matching_resources(policy, r"/task-logs/\*$|<Dags[0-9A-F]{8}\.Arn>/\*$", REASONS["S3_GRANT"])
        _ack_matching_resources(policy, r":secret:[^:]+/(connections|variables)/\*$", REASONS["CONNECTIONS_SECRETS"])
        if config.enable_ecs_exec:
            _ack(policy, "AwsSolutions-IAM5[Resource::*]", REASONS["ECS_EXEC"])
            _ack_matching_resources(policy, r":log-group:<ExecSessionLogs[0-9A-F]{8}>:\*$", REASONS["ECS_EXEC"])
    scheduler_policy = policies[0]
    _ack_matching_resources(policies[1], r":log-stream:worker(-[A-Za-z0-9_-]+)?/[^/]+/\*$", REASONS["WORKER_LIVE_LOGS"])
    _ack_matching_resources(scheduler_policy, r":task/.*/\*$", REASONS["ECS_TASKS"])
    _ack_matching_resources(scheduler_policy, r":task-definition/.*:\*$", REASONS["ECS_FAMILY"])
    _ack(scheduler_policy, "AwsSolutions-IAM5[Resource::*]", REASONS["ECS_DESCRIBE_TASK_DEFINITION"])
    for c in SERVICE_ROLE_IDS:
        _ack(_find(airflow, f"{c}/TaskDefinition"), "AwsSolutions-ECS2", REASONS["ECS2"])
        _ack(
            _find(airflow, f"{c}/TaskDefinition/ExecutionRole/DefaultPolicy"),
            "AwsSolutions-IAM5[Resource::*]",
            REASONS["ECR_AUTH"],
        )
    _ack(_find(cluster, "Workers/ExecutionRole/DefaultPolicy"), "AwsSolutions-IAM5[Resource::*]", REASONS["ECR_AUTH"])
    _ack(_find(cluster, "Workers/TaskDefinition"), "AwsSolutions-ECS2", REASONS["ECS2"])
    _ack(_find(airflow, "WorkerTaskDefinition"), "AwsSolutions-ECS2", REASONS["ECS2"])
    for queue, policy in zip(teams, team_policies):
        _ack(_find(airflow, f"QueueWorkers/{queue.name}"), "AwsSolutions-ECS2", REASONS["ECS2"])
        _ack(policy, "AwsSolutions-IAM5[Action::s3:Abort*]", REASONS["TEAM_S3"])
        _ack_matching_resources(policy, r"<JobsData[0-9A-F]{8}\.Arn>/.*\*$", REASONS["TEAM_S3"])
        _ack_matching_resources(policy, r":secret:.*\*$", REASONS["TEAM_SECRETS"])
        role = _find(cluster, f"Workers/Queues/{queue.name}")
        for arn in queue.managed_policy_arns:
            if ":iam::aws:policy/" in arn:
                _ack(role, f"AwsSolutions-IAM4[Policy::{arn}]", REASONS["TEAM_MANAGED_POLICY"])
    _ack(_find(database, "AirflowSecrets"), "AwsSolutions-SMG4", REASONS["SMG4"])
    _ack(_find(database, "MetadataDb/Instance/Secret"), "AwsSolutions-SMG4", REASONS["SMG4"])
    instance = _find(database, "MetadataDb/Instance")
    _ack(instance, "AwsSolutions-RDS11", REASONS["RDS11"])
    _ack(
        _find(database, "MetadataDb/Instance/MonitoringRole"),
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole]",
        REASONS["RDS_MONITORING_ROLE"],
    )
    if config.stage == "dev":
        if not config.database.multi_az:
            _ack(instance, "AwsSolutions-RDS3", REASONS["RDS3_DEV"])
        if not config.retain_data:
            _ack(instance, "AwsSolutions-RDS10", REASONS["RDS10_DEV"])
    if config.stage == "lean":
        if not config.database.multi_az:
            _ack(instance, "AwsSolutions-RDS3", REASONS["RDS3_LEAN"])
        if not config.retain_data:
            _ack(instance, "AwsSolutions-RDS10", REASONS["RDS10_LEAN"])
    if not config.monitoring.container_insights:
        _ack(_find(cluster, "Cluster"), "AwsSolutions-ECS4", REASONS["ECS4_OFF"])
    for child in database.node.children:
        if child.node.id.startswith("LogRetention"):
            _ack(
                child,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                REASONS["LOG_RETENTION_LAMBDA"],
            )
            _ack(child, "AwsSolutions-IAM5[Resource::*]", REASONS["LOG_RETENTION_LAMBDA"])
    # AwsCustomResource's singleton provider function (fixed construct ID chosen by CDK).
    for child in cluster.node.children:
        if child.node.id.startswith("AWS679f53fac002430cb0da5b7982bd2287"):
            _ack(
                child,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                REASONS["ECS_SLR_LAMBDA"],
            )
    if "0.0.0.0/0" in config.ingress.allowed_cidrs:
        _ack(_find(stacks["network"], "SecurityGroups/LoadBalancer"), "AwsSolutions-EC23", REASONS["EC23"])
    if not config.region:
        _ack(_find(airflow, "Ui/LoadBalancer"), "AwsSolutions-ELB2", REASONS["ELB2_NO_REGION"])
    _acknowledge_jobs(cluster, config)


def _acknowledge_jobs(cluster: cdk.Stack, config: DeploymentConfig) -> None:
    """The ECS jobs of ``config.jobs`` (constructs_lib/ecs_jobs.py) and the workers' grants to run them."""
    if not config.jobs:
        return
    families = "|".join(re.escape(job_names(config.deployment_name, job.name).family) for job in config.jobs)
    # The workers' role and each team queue's run jobs (EcsJobs.grant_run).
    runners = [_find(cluster, "Workers/TaskRole/DefaultPolicy")] + [
        _find(cluster, f"Workers/Queues/{queue.name}/DefaultPolicy") for queue in config.executor.worker_queues if queue.is_team
    ]
    for policy in runners:
        _ack_matching_resources(policy, rf":task-definition/({families}):\*$", REASONS["JOB_FAMILY"])
        _ack_matching_resources(policy, r":task/.*/\*$", REASONS["JOB_TASKS"])
        _ack_matching_resources(policy, r":log-stream:job/\*$", REASONS["JOB_LOGS"])
        statements = cdk.Stack.of(policy).resolve(policy.node.default_child.policy_document).get("Statement", [])
        if any(s.get("Sid") == "ReattachJobs" for s in statements):
            _ack(policy, "AwsSolutions-IAM5[Resource::*]", REASONS["JOB_LIST_TASKS"])
    # Deferrable jobs: the triggerer's TaskDoneTrigger waits (DescribeTasks) and forwards the log.
    triggerer_policy = _find(cluster, "ServiceRoles/Triggerer/DefaultPolicy")
    _ack_matching_resources(triggerer_policy, r":task/.*/\*$", REASONS["JOB_TASKS_DEFERRED"])
    _ack_matching_resources(triggerer_policy, r":log-stream:job/\*$", REASONS["JOB_LOGS"])
    if not config.monitoring.container_insights:
        _ack(_find(cluster, "Jobs/Cluster"), "AwsSolutions-ECS4", REASONS["ECS4_OFF"])
    jobs = _find(cluster, "Jobs")
    for job in jobs.node.children:
        if job.node.try_find_child("TaskDefinition") is None:
            continue
        _ack(job.node.find_child("TaskDefinition"), "AwsSolutions-ECS2", REASONS["JOB_ECS2"])
        _ack(_find(cluster, f"Jobs/{job.node.id}/ExecutionRole/DefaultPolicy"), "AwsSolutions-IAM5[Resource::*]", REASONS["ECR_AUTH"])
        task_policy = _find(cluster, f"Jobs/{job.node.id}/TaskRole/DefaultPolicy")
        if task_policy is not None:
            for action in ("s3:Abort*", "s3:GetObject*", "s3:GetBucket*", "s3:List*"):
                _ack(task_policy, f"AwsSolutions-IAM5[Action::{action}]", REASONS["JOB_S3"])
            _ack_matching_resources(task_policy, r"<JobsData[0-9A-F]{8}\.Arn>/.*\*$", REASONS["JOB_S3"])


def _ack_matching_resources(policy: IConstruct, pattern: str, reason: str) -> None:
    """Acknowledge IAM5 resource findings of ``policy`` whose resource matches ``pattern``.

    The finding names the resource as cdk-nag renders it (``<Logical.Arn>/task-logs/*``), which
    depends on logical IDs, so the statements are read from the policy.
    """
    stack = cdk.Stack.of(policy)
    cfn = policy.node.default_child
    document = stack.resolve(cfn.policy_document)
    for statement in document.get("Statement", []):
        resources = statement.get("Resource", [])
        for resource in resources if isinstance(resources, list) else [resources]:
            rendered = _render(resource)
            if rendered and re.search(pattern, rendered):
                _ack(policy, f"AwsSolutions-IAM5[Resource::{rendered}]", reason)


def _render(value) -> str | None:
    """Render a resolved IAM resource the way cdk-nag names it in a finding."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        return "".join(_render(part) or "" for part in value["Fn::Join"][1])
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    return None
