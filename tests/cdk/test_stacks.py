"""Fine-grained assertions per stack: one class per stack, small precise queries."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from tests.cdk.conftest import resources_of


def container(template: dict, name: str) -> dict:
    for td in resources_of(template, "AWS::ECS::TaskDefinition").values():
        for c in td["Properties"]["ContainerDefinitions"]:
            if c["Name"] == name:
                return c
    raise AssertionError(f"no container named {name}")


def env_of(container_def: dict) -> dict:
    return {e["Name"]: e["Value"] for e in container_def.get("Environment", [])}


def secret_names(container_def: dict) -> set[str]:
    return {s["Name"] for s in container_def.get("Secrets", [])}


class TestNetwork:
    def test_two_azs_public_and_private(self, dev):
        t = dev.template("network")
        t.resource_count_is("AWS::EC2::Subnet", 4)
        t.resource_count_is("AWS::EC2::NatGateway", 1)

    def test_s3_gateway_endpoint_and_flow_logs(self, dev):
        t = dev.template("network")
        t.has_resource_properties("AWS::EC2::VPCEndpoint", {"VpcEndpointType": "Gateway", "ServiceName": Match.any_value()})
        t.has_resource_properties("AWS::EC2::FlowLog", {"TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs"})

    def test_no_nat_profile_has_interface_endpoints(self, no_nat):
        t = no_nat.template("network").to_json()
        assert not resources_of(t, "AWS::EC2::NatGateway")
        services = json.dumps([r["Properties"]["ServiceName"] for r in resources_of(t, "AWS::EC2::VPCEndpoint").values()])
        for service in ("ecr.api", "ecr.dkr", "logs", "secretsmanager", ".ecs", "sts", "s3"):
            assert service in services, f"no {service} endpoint in {services}"

    def test_database_accepts_only_the_services(self, dev):
        t = dev.template("network").to_json()
        groups = resources_of(t, "AWS::EC2::SecurityGroup")
        db_id = next(k for k, v in groups.items() if v["Properties"]["GroupDescription"] == "Airflow metadata database")
        workers_id = next(k for k, v in groups.items() if "worker tasks" in v["Properties"]["GroupDescription"])
        services_id = next(k for k, v in groups.items() if "scheduler" in v["Properties"]["GroupDescription"])
        rules = [r["Properties"] for r in resources_of(t, "AWS::EC2::SecurityGroupIngress").values()]
        to_db = [r for r in rules if r["GroupId"] == {"Fn::GetAtt": [db_id, "GroupId"]}]
        assert [r["SourceSecurityGroupId"] for r in to_db] == [{"Fn::GetAtt": [services_id, "GroupId"]}]
        assert to_db[0]["FromPort"] == 5432
        from_workers = [r for r in rules if r.get("SourceSecurityGroupId") == {"Fn::GetAtt": [workers_id, "GroupId"]}]
        assert [(r["FromPort"], r["GroupId"]) for r in from_workers] == [(8080, {"Fn::GetAtt": [services_id, "GroupId"]})]

    def test_load_balancer_accepts_only_configured_cidrs(self, prod):
        t = prod.template("network").to_json()
        lb = next(v for v in resources_of(t, "AWS::EC2::SecurityGroup").values() if v["Properties"]["GroupDescription"] == "Airflow UI load balancer")
        cidrs = {r["CidrIp"] for r in lb["Properties"].get("SecurityGroupIngress", [])}
        assert cidrs == {"203.0.113.0/24"}


class TestDatabase:
    def test_postgres_encrypted_private_with_backups(self, dev):
        dev.template("database").has_resource_properties(
            "AWS::RDS::DBInstance",
            {
                "Engine": "postgres",
                "EngineVersion": Match.string_like_regexp(r"^17\.\d+$"),
                "StorageEncrypted": True,
                "KmsKeyId": Match.any_value(),
                "PubliclyAccessible": False,
                "BackupRetentionPeriod": 1,
                "DeletionProtection": False,
                "MultiAZ": False,
            },
        )

    def test_prod_is_multi_az_protected_and_snapshotted(self, prod):
        t = prod.template("database")
        t.has_resource_properties("AWS::RDS::DBInstance", {"MultiAZ": True, "DeletionProtection": True, "BackupRetentionPeriod": 7})
        t.has_resource("AWS::RDS::DBInstance", {"DeletionPolicy": "Snapshot", "UpdateReplacePolicy": "Snapshot"})
        t.has_resource("AWS::SecretsManager::Secret", {"DeletionPolicy": "Retain"})
        assert prod.stacks["database"].termination_protection is True

    def test_tls_is_enforced(self, dev):
        dev.template("database").has_resource_properties(
            "AWS::RDS::DBParameterGroup", {"Parameters": {"rds.force_ssl": "1"}}
        )

    def test_credentials_and_airflow_secrets_are_generated(self, dev):
        t = dev.template("database")
        t.resource_count_is("AWS::SecretsManager::Secret", 5)
        t.has_resource_properties(
            "AWS::SecretsManager::Secret",
            {"Description": Match.string_like_regexp("fernet_key"), "GenerateSecretString": {"PasswordLength": 43, "ExcludePunctuation": True}},
        )


class TestImage:
    def test_repository_scans_and_is_immutable(self, dev):
        dev.template("image").has_resource_properties(
            "AWS::ECR::Repository",
            {
                "ImageScanningConfiguration": {"ScanOnPush": True},
                "ImageTagMutability": "IMMUTABLE",
                "LifecyclePolicy": {"LifecyclePolicyText": Match.string_like_regexp("imageCountMoreThan")},
            },
        )

    def test_every_task_runs_the_one_image(self, dev):
        images = set()
        for role in ("cluster", "airflow"):
            for logical_id, td in resources_of(dev.template(role).to_json(), "AWS::ECS::TaskDefinition").items():
                if logical_id.startswith("Jobs"):  # ECS jobs run images of their own (jobs/<name>/)
                    continue
                for c in td["Properties"]["ContainerDefinitions"]:
                    images.add(json.dumps(c["Image"], sort_keys=True))
        assert len(images) == 1, images


class TestCluster:
    def test_insights_and_fargate_capacity_providers(self, dev):
        t = dev.template("cluster")
        t.has_resource_properties(
            "AWS::ECS::Cluster", {"ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}]}
        )
        t.has_resource_properties(
            "AWS::ECS::ClusterCapacityProviderAssociations",
            {"CapacityProviders": Match.array_with(["FARGATE", "FARGATE_SPOT"])},
        )

    def test_worker_task_definition_from_config(self, dev):
        t = dev.template("cluster").to_json()
        worker = container(t, "worker")
        td = next(v for k, v in resources_of(t, "AWS::ECS::TaskDefinition").items() if k.startswith("Workers"))["Properties"]
        assert (td["Cpu"], td["Memory"]) == ("1024", "2048")
        assert worker["LogConfiguration"]["LogDriver"] == "awslogs"

    def test_workers_get_no_db_credentials_fernet_or_jwt(self, any_config):
        worker = container(any_config.template("cluster").to_json(), "worker")
        assert not worker.get("Secrets"), "workers must not receive any secret"
        env = env_of(worker)
        assert not any(k.startswith("AIRFLOW__DATABASE") or "FERNET" in k or "JWT" in k for k in env)
        assert env["CONNECTION_CHECK_MAX_COUNT"] == "0"

    def test_workers_reach_the_execution_api_privately(self, dev):
        env = env_of(container(dev.template("cluster").to_json(), "worker"))
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://api-server.airflow-dev.internal:8080/execution/"
        dev.template("cluster").has_resource_properties("AWS::ServiceDiscovery::PrivateDnsNamespace", {"Name": "airflow-dev.internal"})

    def test_execution_role_can_write_logs_and_pull(self, dev):
        dev.template("cluster").has_resource_properties(
            "AWS::IAM::Policy",
            {
                "PolicyName": Match.string_like_regexp("WorkersExecutionRole"),
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like({"Action": ["logs:CreateLogStream", "logs:PutLogEvents"]}),
                            Match.object_like({"Action": "ecr:GetAuthorizationToken"}),
                        ]
                    )
                },
            },
        )

    def test_worker_task_role_only_writes_task_logs(self, dev):
        t = dev.template("cluster").to_json()
        policy = next(v for k, v in resources_of(t, "AWS::IAM::Policy").items() if k.startswith("WorkersTaskRole"))
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        # Besides task logs, only the grants to run the ECS jobs (tests/cdk/test_jobs_and_scaling.py)
        # and to read connections and variables (tests/cdk/test_connections_backend.py).
        job_sids = {"RunJobs", "FollowJobs", "ReattachJobs", "PassJobRoles", "ReadJobLogs"}
        assert {s["Sid"] for s in statements} == job_sids | {"ListTaskLogs", "WriteTaskLogs", "ReadConnectionsAndVariables"}
        by_sid = {s["Sid"]: s for s in statements}
        assert by_sid["WriteTaskLogs"]["Action"] == ["s3:GetObject", "s3:PutObject"]
        assert by_sid["WriteTaskLogs"]["Resource"]["Fn::Join"][1][-1] == "/task-logs/*"
        assert by_sid["ListTaskLogs"]["Action"] == "s3:ListBucket"

    def test_scheduler_may_launch_exactly_the_workers(self, dev):
        t = dev.template("cluster").to_json()
        policy = next(v for k, v in resources_of(t, "AWS::IAM::Policy").items() if k.startswith("ServiceRolesScheduler"))
        by_sid = {s.get("Sid"): s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
        family = resources_of(t, "AWS::ECS::TaskDefinition")
        family_name = next(v for k, v in family.items() if k.startswith("Workers"))["Properties"]["Family"]
        assert by_sid["RunWorkerTasks"]["Action"] == "ecs:RunTask"
        assert f"task-definition/{family_name}:*" in json.dumps(by_sid["RunWorkerTasks"]["Resource"])
        assert "ecs:cluster" in json.dumps(by_sid["RunWorkerTasks"]["Condition"])
        assert by_sid["TrackWorkerTasks"]["Action"] == ["ecs:DescribeTasks", "ecs:StopTask"]
        passed = by_sid["PassWorkerRoles"]
        assert passed["Action"] == "iam:PassRole"
        roles = {r["Fn::GetAtt"][0] for r in passed["Resource"]}
        assert roles == {k for k in resources_of(t, "AWS::IAM::Role") if k.startswith(("WorkersTaskRole", "WorkersExecutionRole"))}
        assert passed["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}


class TestAirflowServices:
    def test_four_services_with_circuit_breaker(self, dev):
        t = dev.template("airflow")
        t.resource_count_is("AWS::ECS::Service", 4)
        t.all_resources_properties(
            "AWS::ECS::Service",
            {"DeploymentConfiguration": Match.object_like({"DeploymentCircuitBreaker": {"Enable": True, "Rollback": True}})},
        )

    def test_scheduler_runs_the_executor_configured_from_other_stacks(self, dev):
        scheduler = container(dev.template("airflow").to_json(), "scheduler")
        env = env_of(scheduler)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "airflow_ecs_fargate.executor.EcsFargateExecutor"
        assert env["AIRFLOW__AWS_ECS_EXECUTOR__CONTAINER_NAME"] == "worker"
        assert json.loads(env["AIRFLOW__AWS_ECS_EXECUTOR__CAPACITY_PROVIDER_STRATEGY"]) == [
            {"capacityProvider": "FARGATE_SPOT", "weight": 1}
        ]
        assert env["AIRFLOW__AWS_ECS_EXECUTOR__ASSIGN_PUBLIC_IP"] == "False"
        raw = {e["Name"]: e["Value"] for e in scheduler["Environment"]}
        for key in ("CLUSTER", "TASK_DEFINITION", "SUBNETS", "SECURITY_GROUPS"):
            assert f"AIRFLOW__AWS_ECS_EXECUTOR__{key}" in raw
        assert "Fn::ImportValue" in json.dumps(raw["AIRFLOW__AWS_ECS_EXECUTOR__CLUSTER"])
        assert "Fn::ImportValue" in json.dumps(raw["AIRFLOW__AWS_ECS_EXECUTOR__SECURITY_GROUPS"])

    def test_swapping_to_the_stock_executor_uses_launch_type(self, tmp_path):
        from tests.cdk.conftest import synthesize

        stock = synthesize({"executor_class": "airflow.providers.amazon.aws.executors.ecs.ecs_executor.AwsEcsExecutor"}, tmp_path)
        env = env_of(container(stock.template("airflow").to_json(), "scheduler"))
        assert env["AIRFLOW__AWS_ECS_EXECUTOR__LAUNCH_TYPE"] == "FARGATE"
        assert "AIRFLOW__AWS_ECS_EXECUTOR__CAPACITY_PROVIDER_STRATEGY" not in env

    def test_migration_runs_before_the_api_server_and_others_wait(self, dev):
        t = dev.template("airflow").to_json()
        for td in resources_of(t, "AWS::ECS::TaskDefinition").values():
            containers = {c["Name"]: c for c in td["Properties"]["ContainerDefinitions"]}
            main = next(c for c in containers.values() if c["Essential"])
            init = next(c for c in containers.values() if not c["Essential"])
            assert main["DependsOn"] == [{"Condition": "SUCCESS", "ContainerName": init["Name"]}]
            if main["Name"] == "api-server":
                assert init["Name"] == "db-migrate"
                script = init["Command"][-1]
                assert "airflow db migrate" in script and "users create --role Admin" in script
                assert "ADMIN_PASSWORD" in secret_names(init)
            else:
                assert init["Command"][:2] == ["db", "check-migrations"]

    def test_db_components_read_the_db_and_fernet_secrets_through_cmd_and_get_only_their_signing_secrets(self, dev):
        """docs/security.md: the DB credentials and the fernet key never enter an environment;
        the JWT secret only where tokens are signed, the API secret key only in the api-server."""
        t = dev.template("airflow").to_json()
        expected = {
            "scheduler": {"AIRFLOW__API_AUTH__JWT_SECRET"},
            "api-server": {"AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"},
            "dag-processor": set(),
            "triggerer": set(),
        }
        for name, secrets in expected.items():
            c = container(t, name)
            assert secret_names(c) == secrets, name
            env = env_of(c)
            assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD"].endswith("config_commands sql_alchemy_conn")
            assert env["AIRFLOW__CORE__FERNET_KEY_CMD"].endswith("config_commands fernet_key")
            assert "ImportValue" in json.dumps(env["AIRFLOW_DB_SECRET_ARN"]) and "MetadataDbInstanceSecret" in json.dumps(env["AIRFLOW_DB_SECRET_ARN"])
            assert "AirflowSecretsFernetKey" in json.dumps(env["AIRFLOW_FERNET_KEY_SECRET_ARN"])

    def test_every_container_with_the_db_url_gets_the_async_db_url(self, any_config):
        # Airflow would otherwise derive the asyncpg URL from the sync one, with sslmode.
        from airflow_ecs_fargate.config_commands import COMMANDS

        t = any_config.template("airflow").to_json()
        with_db = [
            env_of(c)
            for td in resources_of(t, "AWS::ECS::TaskDefinition").values()
            for c in td["Properties"]["ContainerDefinitions"]
            if "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD" in env_of(c)
        ]
        assert len(with_db) == 8  # four components and their init containers
        for env in with_db:
            command = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC_CMD"].split()
            assert command[:3] == ["python", "-m", "airflow_ecs_fargate.config_commands"]
            assert command[3:] == ["sql_alchemy_conn_async"] and command[3] in COMMANDS

    def test_secrets_are_identical_across_components(self, dev):
        t = dev.template("airflow").to_json()
        def source(name, secret):
            return json.dumps(next(s["ValueFrom"] for s in container(t, name)["Secrets"] if s["Name"] == secret), sort_keys=True)
        assert source("scheduler", "AIRFLOW__API_AUTH__JWT_SECRET") == source("api-server", "AIRFLOW__API_AUTH__JWT_SECRET")
        for arn in ("AIRFLOW_DB_SECRET_ARN", "AIRFLOW_FERNET_KEY_SECRET_ARN"):
            values = {json.dumps(env_of(container(t, n))[arn], sort_keys=True) for n in ("scheduler", "api-server", "dag-processor", "triggerer")}
            assert len(values) == 1, arn

    def test_health_checks(self, dev):
        t = dev.template("airflow").to_json()
        assert "/api/v2/monitor/health" in container(t, "api-server")["HealthCheck"]["Command"][1]
        assert "--job-type SchedulerJob" in container(t, "scheduler")["HealthCheck"]["Command"][1]
        assert "--job-type TriggererJob" in container(t, "triggerer")["HealthCheck"]["Command"][1]
        dev.template("airflow").has_resource_properties(
            "AWS::ElasticLoadBalancingV2::TargetGroup", {"HealthCheckPath": "/api/v2/monitor/health", "TargetType": "ip"}
        )

    def test_api_server_registers_in_cloud_map(self, dev):
        dev.template("airflow").has_resource_properties(
            "AWS::ServiceDiscovery::Service", {"Name": "api-server", "DnsConfig": Match.object_like({"DnsRecords": [{"Type": "A", "TTL": 10}]})}
        )

    def test_outputs_give_url_and_password_location(self, dev):
        outputs = dev.template("airflow").to_json()["Outputs"]
        assert {"AirflowUiUrl", "AdminUsername", "AdminPasswordSecretArn"} <= set(outputs)

    def test_https_with_certificate_and_redirect(self, prod):
        t = prod.template("airflow")
        t.has_resource_properties(
            "AWS::ElasticLoadBalancingV2::Listener",
            {"Port": 443, "Protocol": "HTTPS", "SslPolicy": Match.string_like_regexp("TLS13|TLS-1-2")},
        )
        t.has_resource_properties(
            "AWS::ElasticLoadBalancingV2::Listener",
            {"Port": 80, "DefaultActions": [Match.object_like({"Type": "redirect", "RedirectConfig": Match.object_like({"Protocol": "HTTPS", "Port": "443"})})]},
        )

    def test_prod_runs_two_schedulers_and_api_servers(self, prod):
        t = prod.template("airflow").to_json()
        counts = sorted(s["Properties"]["DesiredCount"] for s in resources_of(t, "AWS::ECS::Service").values())
        assert counts == [1, 1, 2, 2]


class TestTaskDefinitionFamilies:
    """The executor and EcsRunTaskOperator run a family's latest ACTIVE revision: a family shared by
    two deployments in one account and region would run the other deployment's revision."""

    def test_worker_and_job_families_are_named_per_deployment(self, dev, prod):
        for synthesized in (dev, prod):
            families = sorted(
                td["Properties"]["Family"]
                for td in resources_of(synthesized.template("cluster").to_json(), "AWS::ECS::TaskDefinition").values()
            )
            name = synthesized.config.deployment_name
            assert families == sorted([f"{name}-worker", *(f"{name}-job-{job.name}" for job in synthesized.config.jobs)])

    def test_the_scheduler_runs_the_family_the_cluster_registers(self, dev):
        env = env_of(container(dev.template("airflow").to_json(), "scheduler"))
        assert env["AIRFLOW__AWS_ECS_EXECUTOR__TASK_DEFINITION"] == "airflow-dev-worker"


class TestDagBundle:
    def test_image_bundle_by_default(self, dev):
        env = env_of(container(dev.template("cluster").to_json(), "worker"))
        bundles = json.loads(env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"])
        assert bundles[0]["classpath"].endswith("LocalDagBundle")

    def test_s3_bundle_adds_a_bucket_the_workers_read(self, tmp_path):
        from tests.cdk.conftest import synthesize

        s3 = synthesize({"dag_bundle": "s3"}, tmp_path)
        t = s3.template("cluster").to_json()
        raw = next(e["Value"] for e in container(t, "worker")["Environment"] if e["Name"] == "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST")
        assert "S3DagBundle" in json.dumps(raw)
        assert len(resources_of(t, "AWS::S3::Bucket")) == 4  # access logs, task logs, DAGs, jobs' data


class TestBrandNewAccount:
    def test_ecs_service_linked_role_is_created_before_the_cluster(self, dev):
        t = dev.template("cluster").to_json()
        (cr_id, custom) = next((k, v) for k, v in t["Resources"].items() if v["Type"] == "Custom::AWS")
        create = json.loads(custom["Properties"]["Create"])
        assert (create["service"], create["action"]) == ("IAM", "createServiceLinkedRole")
        assert create["parameters"] == {"AWSServiceName": "ecs.amazonaws.com"}
        assert create["ignoreErrorCodesMatching"] == "InvalidInput", "an existing role is success"
        assert "Delete" not in custom["Properties"], "the role belongs to the account"
        clusters = resources_of(t, "AWS::ECS::Cluster")
        assert sorted(k[:-8] for k in clusters) == ["Cluster", "JobsCluster"]  # the services' and the jobs'
        # The custom resource waits for its policy; each cluster waits for both.
        for cluster in clusters.values():
            assert {cr_id, *custom["DependsOn"]} <= set(cluster["DependsOn"])

    def test_the_custom_resource_may_create_only_the_ecs_role(self, dev):
        t = dev.template("cluster").to_json()
        custom_policies = [
            p for k, p in resources_of(t, "AWS::IAM::Policy").items() if k.startswith("EcsServiceLinkedRole")
        ]
        (statement,) = custom_policies[0]["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Action"] == "iam:CreateServiceLinkedRole"
        assert statement["Condition"] == {"StringEquals": {"iam:AWSServiceName": "ecs.amazonaws.com"}}
        assert "AWSServiceRoleForECS" in json.dumps(statement["Resource"])

    def test_the_custom_resource_logs_with_the_apps_retention(self, dev):
        t = dev.template("cluster").to_json()
        # AwsCustomResource's provider function has a fixed construct ID chosen by CDK.
        (function,) = [f for k, f in resources_of(t, "AWS::Lambda::Function").items() if k.startswith("AWS679f53fac002430cb0da5b7982bd2287")]
        log_group_id = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert t["Resources"][log_group_id]["Properties"]["RetentionInDays"] == dev.config.log_retention_days
        assert t["Resources"][log_group_id]["DeletionPolicy"] == "Delete", "dev is destroyable"


class TestHealthChecks:
    """Timing follows the measured cost of ``airflow jobs check`` (constructs_lib/airflow_service.py)."""

    def test_jobs_check_timing_has_margin_on_each_component(self, any_config):
        from constructs_lib.airflow_service import HEALTH_CHECK_MEASURED_CPU_SECONDS

        t = any_config.template("airflow").to_json()
        sizes = any_config.config.services
        for name, size in (
            ("scheduler", sizes.scheduler_size),
            ("dag-processor", sizes.dag_processor_size),
            ("triggerer", sizes.triggerer_size),
        ):
            estimate = HEALTH_CHECK_MEASURED_CPU_SECONDS * 1024 / size.cpu
            check = container(t, name)["HealthCheck"]
            assert "airflow jobs check" in check["Command"][1]
            assert 5 * estimate <= check["Timeout"] <= 120, "ECS allows at most 120 s"
            assert check["Interval"] > check["Timeout"]
            assert check["Interval"] >= 20 * HEALTH_CHECK_MEASURED_CPU_SECONDS, "the check costs at most 5 % of a vCPU"
            assert check["Interval"] >= 10 * estimate, "the check takes at most 10 % of the task's CPU"
            assert check["Interval"] <= 300, "ECS allows at most 300 s"
            assert check["Retries"] >= 3
            assert check["StartPeriod"] <= 300, "ECS allows at most 300 s"


class TestGitDagBundle:
    """``dag_bundle=git``: the bundle's JSON, and the git connection only where the bundle is fetched."""

    GIT_SECRET = "airflow/dev/git-dags"

    @staticmethod
    def _all_containers(synthesized) -> dict[str, dict]:
        found = {}
        for stack in ("cluster", "airflow"):
            t = synthesized.template(stack).to_json()
            for key, td in resources_of(t, "AWS::ECS::TaskDefinition").items():
                for c in td["Properties"]["ContainerDefinitions"]:
                    found[c["Name"]] = {**c, "_stack": stack, "_td": td}
        return found

    def test_bundle_config_is_airflows_git_bundle(self, synth):
        git = synth("git-dags")
        env = env_of(container(git.template("cluster").to_json(), "worker"))
        (bundle,) = json.loads(env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"])
        assert bundle == {
            "name": "git-dags",
            "classpath": "airflow.providers.git.bundles.git.GitDagBundle",
            "kwargs": {"repo_url": "https://git.example.com/team/dags.git", "tracking_ref": "main",
                       "refresh_interval": 60, "git_conn_id": "git_dags"},
        }

    def test_only_the_dag_processor_and_the_workers_get_the_connection(self, synth):
        containers = self._all_containers(synth("git-dags"))
        from constructs_lib.airflow_settings import GIT_BUNDLE_READERS

        having = sorted(name for name, c in containers.items() if "AIRFLOW_CONN_GIT_DAGS" in secret_names(c))
        assert having == sorted(GIT_BUNDLE_READERS) == ["dag-processor", "worker"]
        for name in having:
            (value_from,) = [s["ValueFrom"] for s in containers[name]["Secrets"] if s["Name"] == "AIRFLOW_CONN_GIT_DAGS"]
            assert self.GIT_SECRET in json.dumps(value_from)

    def test_only_their_execution_roles_may_read_the_secret(self, synth):
        git = synth("git-dags")
        readers = []
        for stack in ("cluster", "airflow"):
            t = git.template(stack).to_json()
            for key, policy in resources_of(t, "AWS::IAM::Policy").items():
                for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                    if self.GIT_SECRET in json.dumps(statement.get("Resource")):
                        readers.append((stack, json.dumps(policy["Properties"]["Roles"]), statement["Action"]))
        assert len(readers) == 2, readers
        assert all("ExecutionRole" in roles or "TaskDefExecutionRole" in roles for _, roles, _ in readers), readers
        assert {stack for stack, _, _ in readers} == {"cluster", "airflow"}
        assert all(action == "secretsmanager:GetSecretValue" or "secretsmanager:GetSecretValue" in action
                   for _, _, action in readers)

    def test_default_bundle_has_no_git_connection(self, dev):
        containers = self._all_containers(dev)
        assert not [n for n, c in containers.items() if "AIRFLOW_CONN_GIT_DAGS" in secret_names(c)]
