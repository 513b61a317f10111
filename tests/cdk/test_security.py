"""Least privilege and exposure, checked across every template of every configuration."""

from __future__ import annotations

import json
import re

import pytest
from aws_cdk.assertions import Annotations, Match

from tests.cdk.conftest import CONFIGURATIONS, PROJECT_ROOT, resources_of, synthesize

#: Actions allowed on Resource "*" because AWS offers no resource-level permission for them
#: (Service Authorization Reference), each with where it comes from.
STAR_RESOURCE_ACTIONS = {
    "ecr:GetAuthorizationToken": "execution roles: the ECR login token is account-wide",
    "logs:PutRetentionPolicy": "CDK's LogRetention Lambda (RDS log groups it does not own by name)",
    "logs:DeleteRetentionPolicy": "CDK's LogRetention Lambda",
    "ssmmessages:CreateControlChannel": "ECS Exec (only with enable_ecs_exec)",
    "ssmmessages:CreateDataChannel": "ECS Exec",
    "ssmmessages:OpenControlChannel": "ECS Exec",
    "ssmmessages:OpenDataChannel": "ECS Exec",
    "logs:DescribeLogGroups": "ECS Exec session logging",
    "ecs:DescribeTaskDefinition": "scheduler: the executor reads a worker task definition's essential containers",
    "ecs:ListTasks": "workers with ECS jobs (reattach=True): names no task; limited by the ecs:cluster condition",
}


def statements(template: dict):
    """Yield (logical ID, statement) for every statement of every identity policy."""
    for logical_id, policy in resources_of(template, "AWS::IAM::Policy").items():
        for s in policy["Properties"]["PolicyDocument"]["Statement"]:
            yield logical_id, s
    for logical_id, role in resources_of(template, "AWS::IAM::Role").items():
        for inline in role["Properties"].get("Policies", []):
            for s in inline["PolicyDocument"]["Statement"]:
                yield logical_id, s


def as_list(value):
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="module", params=[*CONFIGURATIONS, "exec"])
def every_config(request, synth, tmp_path_factory):
    if request.param == "exec":
        return synthesize({"enable_ecs_exec": "true", "read_only_root_filesystem": "false"}, tmp_path_factory.mktemp("exec"))
    return synth(request.param)


class TestLeastPrivilege:
    def test_no_wildcard_action(self, every_config):
        for role, template in every_config.templates().items():
            for logical_id, s in statements(template):
                for action in as_list(s["Action"]):
                    assert action != "*" and not action.endswith(":*"), f"{role}/{logical_id}: {action}"

    def test_star_resource_only_where_no_resource_level_permission_exists(self, every_config):
        for role, template in every_config.templates().items():
            for logical_id, s in statements(template):
                if "*" in as_list(s.get("Resource", [])):
                    extra = set(as_list(s["Action"])) - set(STAR_RESOURCE_ACTIONS)
                    assert not extra, f"{role}/{logical_id}: {sorted(extra)} on Resource *"
                    if "ecs:ListTasks" in as_list(s["Action"]):
                        assert "ecs:cluster" in json.dumps(s.get("Condition")), f"{role}/{logical_id}: ListTasks in any cluster"

    def test_pass_role_only_for_the_two_worker_roles_to_ecs_tasks(self, every_config):
        """The scheduler passes the two worker roles; with ECS jobs the workers pass each job's
        two roles (constructs_lib/ecs_jobs.py). Nothing else passes a role."""
        found = []
        jobs = [j.name.replace("-", " ").title().replace(" ", "") for j in every_config.config.jobs]
        for template in every_config.templates().values():
            for logical_id, s in statements(template):
                if "iam:PassRole" in as_list(s["Action"]):
                    found.append(s.get("Sid"))
                    targets = {r["Fn::GetAtt"][0] for r in as_list(s["Resource"])}
                    if s.get("Sid") == "PassWorkerRoles":
                        assert len(targets) == 2 and all(t.startswith(("WorkersTaskRole", "WorkersExecutionRole")) for t in targets)
                    else:
                        expected = {f"Jobs{j}{r}" for j in jobs for r in ("TaskRole", "ExecutionRole")}
                        assert {t[:-8] for t in targets} == expected, targets
                    assert s["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
        assert sorted(found) == sorted(["PassWorkerRoles"] + (["PassJobRoles"] if jobs else [])), found

    def test_worker_task_role_cannot_touch_the_db_or_secrets(self, every_config):
        cluster = every_config.templates()["cluster"]
        for logical_id, s in statements(cluster):
            if logical_id.startswith("WorkersTaskRole"):
                text = json.dumps(s)
                if s.get("Sid") == "ReadConnectionsAndVariables":
                    # The deployment's connections and variables only: tests/cdk/test_connections_backend.py.
                    assert s["Action"] == "secretsmanager:GetSecretValue", text
                    ends = [r if isinstance(r, str) else r["Fn::Join"][1][-1] for r in s["Resource"]]
                    assert len(ends) == 2 and all(e.endswith(("/connections/*", "/variables/*")) for e in ends), text
                    continue
                assert not any(a.startswith(("rds", "secretsmanager", "kms")) for a in as_list(s["Action"])), text
                assert "ImportValue" not in text, f"worker task role reaches into another stack: {text}"


class TestNetworkExposure:
    def test_private_only_mode_uses_an_internal_load_balancer(self, tmp_path):
        private = synthesize({"ui_private_only": "true"}, tmp_path)
        private.template("airflow").has_resource_properties(
            "AWS::ElasticLoadBalancingV2::LoadBalancer", {"Scheme": "internal"}
        )
        lb = next(
            v for v in resources_of(private.templates()["network"], "AWS::EC2::SecurityGroup").values()
            if v["Properties"]["GroupDescription"] == "Airflow UI load balancer"
        )
        assert {r["CidrIp"] for r in lb["Properties"]["SecurityGroupIngress"]} == {"10.0.0.0/16"}

    def test_prod_with_private_ui_needs_no_certificate(self, tmp_path):
        synthesize({"stage": "prod", "ui_private_only": "true"}, tmp_path)

    def test_dev_without_certificate_warns(self, dev):
        Annotations.from_stack(dev.stacks["airflow"]).has_warning(
            "/Airflow/Ui", Match.string_like_regexp("plain HTTP: set domain_name")
        )

    def test_prod_with_certificate_does_not_warn(self, prod):
        Annotations.from_stack(prod.stacks["airflow"]).has_no_warning("*", Match.string_like_regexp("plain HTTP"))

    def test_workers_egress_is_execution_api_and_https_only(self, dev):
        t = dev.templates()["network"]
        workers = next(v for v in resources_of(t, "AWS::EC2::SecurityGroup").values() if "worker tasks" in v["Properties"]["GroupDescription"])
        egress = workers["Properties"].get("SecurityGroupEgress", [])
        egress += [r["Properties"] for r in resources_of(t, "AWS::EC2::SecurityGroupEgress").values()]
        ports = sorted((e["FromPort"], e.get("CidrIp", "sg")) for e in egress if e.get("GroupId") in (None,) or "Workers" in json.dumps(e.get("GroupId", "")))
        assert ports == [(443, "0.0.0.0/0"), (8080, "sg")], ports


def test_read_only_root_filesystem_can_be_turned_off(tmp_path):
    writable = synthesize({"read_only_root_filesystem": "false"}, tmp_path)
    flags = {
        c["ReadonlyRootFilesystem"]
        for role in ("cluster", "airflow")
        for td in resources_of(writable.templates()[role], "AWS::ECS::TaskDefinition").values()
        for c in td["Properties"]["ContainerDefinitions"]
    }
    assert flags == {False}


class TestEcsExec:
    def test_off_by_default(self, dev):
        for s in resources_of(dev.templates()["airflow"], "AWS::ECS::Service").values():
            assert not s["Properties"].get("EnableExecuteCommand")

    def test_when_enabled_sessions_are_logged(self, tmp_path):
        exec_on = synthesize({"enable_ecs_exec": "true", "read_only_root_filesystem": "false"}, tmp_path)
        exec_on.template("cluster").has_resource_properties(
            "AWS::ECS::Cluster",
            {"Configuration": {"ExecuteCommandConfiguration": Match.object_like({"Logging": "OVERRIDE", "LogConfiguration": Match.object_like({"CloudWatchLogGroupName": Match.any_value()})})}},
        )
        for s in resources_of(exec_on.templates()["airflow"], "AWS::ECS::Service").values():
            assert s["Properties"]["EnableExecuteCommand"] is True
        # The SSM agent ECS Exec injects needs a writable root in every container it may enter.
        for td in resources_of(exec_on.templates()["airflow"], "AWS::ECS::TaskDefinition").values():
            assert all(c["ReadonlyRootFilesystem"] is False for c in td["Properties"]["ContainerDefinitions"])


class TestScratchSpace:
    """Every container writes scratch files to an airflow-owned volume named by TMPDIR, so nothing
    relies on the mode Fargate gives /tmp."""

    def test_every_container_mounts_the_scratch_volume_and_sets_tmpdir(self, any_config):
        from constructs_lib.airflow_service import SCRATCH_PATH

        checked = 0
        for role in ("cluster", "airflow"):
            for logical_id, td in resources_of(any_config.templates()[role], "AWS::ECS::TaskDefinition").items():
                if logical_id.startswith("Jobs"):
                    continue  # ECS jobs run images of the user's own (jobs/<name>/), not Airflow's
                volumes = {v["Name"] for v in td["Properties"]["Volumes"]}
                for c in td["Properties"]["ContainerDefinitions"]:
                    mounts = {m["ContainerPath"]: m for m in c["MountPoints"]}
                    assert mounts[SCRATCH_PATH]["SourceVolume"] in volumes and mounts[SCRATCH_PATH]["ReadOnly"] is False
                    assert {"Name": "TMPDIR", "Value": SCRATCH_PATH} in c["Environment"], c["Name"]
                    checked += 1
        assert checked == 9  # the worker, four components and their four init containers

    def test_the_image_creates_the_scratch_path_as_the_airflow_user_and_declares_it_a_volume(self):
        from constructs_lib.airflow_service import SCRATCH_PATH, WRITABLE_PATHS

        lines = (PROJECT_ROOT / "docker" / "Dockerfile").read_text().splitlines()
        user_line = max(i for i, line in enumerate(lines) if line.startswith("USER "))
        assert lines[user_line] == "USER 50000"
        mkdir_line = next(i for i, line in enumerate(lines) if line.startswith("RUN") and SCRATCH_PATH in line)
        assert mkdir_line > user_line, "created after USER 50000, so owned by airflow"
        (volume,) = [line for line in lines if line.startswith("VOLUME")]
        assert set(json.loads(volume.removeprefix("VOLUME "))) == set(WRITABLE_PATHS.values())


# -- issue 16: tasks cannot reach each other, secrets only where used, a closed Execution API ----

#: What a DAG-running process must not find in its environment: the DB fields, the fernet key
#: body and the signing secrets (environment names as ECS would inject them).
DAG_VISIBLE_FORBIDDEN = re.compile(r"^DB_(HOST|USERNAME|PASSWORD|PORT|NAME)$|FERNET_KEY_BODY|JWT_SECRET$|__API__SECRET_KEY$")


def _containers(template: dict, prefix: str):
    (td,) = [v for k, v in resources_of(template, "AWS::ECS::TaskDefinition").items() if k.startswith(prefix)]
    return td["Properties"]["ContainerDefinitions"]


class TestSecretsOnlyWhereUsed:
    """docs/security.md, trust model: DAG code runs in the dag-processor (parsing), the triggerer
    (custom triggers) and the workers; none of their containers is given a secret value."""

    @pytest.mark.parametrize("prefix", ["DagProcessorTaskDefinition", "TriggererTaskDefinition"])
    def test_dag_running_components_get_no_secret_in_environment_or_secrets(self, any_config, prefix):
        for c in _containers(any_config.templates()["airflow"], prefix):
            names = [e["Name"] for e in c.get("Environment", [])]
            assert c.get("Secrets", []) == [], f"{c['Name']}: {c.get('Secrets')}"
            assert not [n for n in names if DAG_VISIBLE_FORBIDDEN.search(n)], f"{c['Name']}: {names}"

    def test_workers_get_no_secret(self, any_config):
        for c in _containers(any_config.templates()["cluster"], "WorkersTaskDefinition"):
            assert "Secrets" not in c
            assert not [e["Name"] for e in c["Environment"] if DAG_VISIBLE_FORBIDDEN.search(e["Name"]) or e["Name"].endswith("_SECRET_ARN")]

    def test_no_component_gets_the_db_or_fernet_values_as_ecs_secrets(self, any_config):
        t = any_config.templates()["airflow"]
        for logical_id, td in resources_of(t, "AWS::ECS::TaskDefinition").items():
            for c in td["Properties"]["ContainerDefinitions"]:
                injected = {s["Name"] for s in c.get("Secrets", [])}
                assert not injected & {"DB_HOST", "DB_USERNAME", "DB_PASSWORD", "AIRFLOW_FERNET_KEY_BODY"}, (logical_id, injected)

    def test_execution_roles_of_the_dag_running_components_read_no_secret(self, dev):
        t = dev.templates()["airflow"]
        for prefix in ("DagProcessorTaskDefinitionExecutionRole", "TriggererTaskDefinitionExecutionRole"):
            actions = [a for logical_id, s in statements(t) if logical_id.startswith(prefix) for a in as_list(s["Action"])]
            assert actions and not [a for a in actions if a.startswith(("secretsmanager:", "kms:"))], (prefix, actions)

    def test_task_roles_read_exactly_the_db_and_fernet_secrets(self, dev):
        """The _CMD helpers read these two secrets with the task role; nothing else is readable."""
        t = dev.templates()["cluster"]
        for component in ("Scheduler", "ApiServer", "DagProcessor", "Triggerer"):
            # Connections and variables: tests/cdk/test_connections_backend.py.
            found = [s for logical_id, s in statements(t) if logical_id.startswith(f"ServiceRoles{component}") and any(a.startswith("secretsmanager:") for a in as_list(s["Action"])) and s.get("Sid") != "ReadConnectionsAndVariables"]
            assert len(found) == 1, component
            (s,) = found
            assert s["Action"] == "secretsmanager:GetSecretValue"
            imports = sorted(r["Fn::ImportValue"].split("ExportsOutputRef")[1][:28] for r in s["Resource"])
            assert imports == ["AirflowSecretsFernetKey2535D", "MetadataDbInstanceSecretAtta"], imports


class TestWorkersReachOnlyTheirJobs:
    """The workers' DescribeTasks/StopTask/ListTasks/RunTask, evaluated with the conditions (the
    evaluator of tests/cdk/test_scheduler_iam.py; moto ignores Condition blocks): allowed on a
    job task in the jobs cluster, refused on any task of the services' cluster."""

    def _policy(self, synthesized):
        from tests.cdk.test_scheduler_iam import _Resolver

        t = synthesized.template("cluster").to_json()
        (policy,) = [v for k, v in resources_of(t, "AWS::IAM::Policy").items() if k.startswith("WorkersTaskRoleDefaultPolicy")]
        (services_cluster,) = [k for k in resources_of(t, "AWS::ECS::Cluster") if k.startswith("Cluster")]
        (jobs_cluster,) = [k for k in resources_of(t, "AWS::ECS::Cluster") if k.startswith("JobsCluster")]
        account, region = "123456789012", synthesized.config.region or "eu-west-1"
        resolve = _Resolver(t, account, region, jobs_cluster)
        resolved = [
            {**s, "Resource": resolve(s["Resource"]), "Condition": {op: {k: resolve(v) for k, v in kv.items()} for op, kv in s.get("Condition", {}).items()}}
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
        ]
        prefix = f"arn:aws:ecs:{region}:{account}"
        jobs = (f"{prefix}:cluster/{resolve({'Ref': jobs_cluster})}", f"{prefix}:task/{resolve({'Ref': jobs_cluster})}/0123456789abcdef")
        services = (f"{prefix}:cluster/airflow-services", f"{prefix}:task/airflow-services/fedcba9876543210")
        assert resolve({"Ref": services_cluster}) != resolve({"Ref": jobs_cluster})
        return resolved, jobs, services

    @pytest.mark.parametrize("name", ["dev", "prod"])
    @pytest.mark.parametrize("action", ["ecs:DescribeTasks", "ecs:StopTask"])
    def test_follow_and_stop_only_job_tasks(self, synth, name, action):
        from tests.cdk.test_scheduler_iam import allowed

        policy, (jobs_cluster, job_task), (services_cluster, service_task) = self._policy(synth(name))
        assert allowed(policy, action, job_task, {"ecs:cluster": jobs_cluster})
        assert not allowed(policy, action, service_task, {"ecs:cluster": services_cluster})
        # a task ARN of the services' cluster named with the jobs cluster's context still fails
        assert not allowed(policy, action, service_task, {"ecs:cluster": jobs_cluster})

    def test_list_and_run_only_in_the_jobs_cluster(self, dev):
        from tests.cdk.test_scheduler_iam import allowed

        policy, (jobs_cluster, _), (services_cluster, _) = self._policy(dev)
        assert allowed(policy, "ecs:ListTasks", "*", {"ecs:cluster": jobs_cluster})
        assert not allowed(policy, "ecs:ListTasks", "*", {"ecs:cluster": services_cluster})
        family = [td["Properties"]["Family"] for k, td in resources_of(dev.templates()["cluster"], "AWS::ECS::TaskDefinition").items() if k.startswith("JobsUploadFileToS3")][0]
        td = f"arn:aws:ecs:eu-west-1:123456789012:task-definition/{family}:3"
        assert allowed(policy, "ecs:RunTask", td, {"ecs:cluster": jobs_cluster})
        assert not allowed(policy, "ecs:RunTask", td, {"ecs:cluster": services_cluster})
        worker_family = [td["Properties"]["Family"] for k, td in resources_of(dev.templates()["cluster"], "AWS::ECS::TaskDefinition").items() if k.startswith("WorkersTaskDefinition")][0]
        assert not allowed(policy, "ecs:RunTask", f"arn:aws:ecs:eu-west-1:123456789012:task-definition/{worker_family}:3", {"ecs:cluster": jobs_cluster})

    def test_the_jobs_variable_names_the_jobs_cluster(self, dev):
        t = dev.templates()["cluster"]
        (jobs_cluster,) = [k for k in resources_of(t, "AWS::ECS::Cluster") if k.startswith("JobsCluster")]
        (worker,) = _containers(t, "WorkersTaskDefinition")
        variable = next(e["Value"] for e in worker["Environment"] if e["Name"] == "AIRFLOW_VAR_ECS_JOB_UPLOAD_FILE_TO_S3")
        assert {"Ref": jobs_cluster} in variable["Fn::Join"][1]

    def test_without_jobs_there_is_one_cluster(self, synth):
        assert list(resources_of(synth("no-jobs").templates()["cluster"], "AWS::ECS::Cluster")) == [
            k for k in resources_of(synth("no-jobs").templates()["cluster"], "AWS::ECS::Cluster") if k.startswith("Cluster")
        ]


class TestExecutionApiIsClosedAtTheLoadBalancer:
    @pytest.mark.parametrize("name", ["dev", "prod", "issued-certificate", "private-ui-prod"])
    def test_every_listener_refuses_the_execution_api_before_forwarding(self, synth, name):
        from constructs_lib.ingress import EXECUTION_API_PATH_PATTERNS

        t = synth(name).templates()["airflow"]
        listeners = resources_of(t, "AWS::ElasticLoadBalancingV2::Listener")
        rules = resources_of(t, "AWS::ElasticLoadBalancingV2::ListenerRule")
        forwarding = [k for k, v in listeners.items() if any(a["Type"] == "forward" for a in v["Properties"]["DefaultActions"])]
        assert forwarding, "a listener forwards to the api-server"
        refused = {}
        for rule in rules.values():
            p = rule["Properties"]
            if p["Conditions"] == [{"Field": "path-pattern", "PathPatternConfig": {"Values": EXECUTION_API_PATH_PATTERNS}}]:
                assert p["Actions"] == [{"Type": "fixed-response", "FixedResponseConfig": {
                    "StatusCode": "403", "ContentType": "text/plain",
                    "MessageBody": "The Airflow Execution API is served inside the VPC only."}}]
                refused[p["ListenerArn"]["Ref"]] = p["Priority"]
        assert set(refused) == set(listeners), (refused, list(listeners))
        # no other rule on a listener comes before it
        for rule in rules.values():
            p = rule["Properties"]
            assert p["Priority"] >= refused[p["ListenerArn"]["Ref"]]
        assert set(forwarding) <= set(refused)

    def test_workers_still_reach_the_api_server_through_cloud_map(self, dev):
        (worker,) = _containers(dev.templates()["cluster"], "WorkersTaskDefinition")
        url = next(e["Value"] for e in worker["Environment"] if e["Name"] == "AIRFLOW__CORE__EXECUTION_API_SERVER_URL")
        assert url == "http://api-server.airflow-dev.internal:8080/execution/"


class TestRetention:
    """README, Destroying: with retain_data (prod) the DB is snapshotted and the DB, its master
    secret, the fernet/JWT/API/admin secrets, the buckets and the repository are kept; in dev all
    are deleted. One assertion per resource."""

    RETAINED = {
        # (stack, type, logical ID prefix): prod policy
        ("database", "AWS::RDS::DBInstance", "MetadataDbInstance"): "Snapshot",
        ("database", "AWS::SecretsManager::Secret", "DatabaseMetadataDbInstanceSecret"): "Retain",
        ("database", "AWS::KMS::Key", "MetadataDbKey"): "Retain",
        ("database", "AWS::SecretsManager::Secret", "AirflowSecretsFernetKey"): "Retain",
        ("database", "AWS::SecretsManager::Secret", "AirflowSecretsJwtSecret"): "Retain",
        ("database", "AWS::SecretsManager::Secret", "AirflowSecretsApiSecretKey"): "Retain",
        ("database", "AWS::SecretsManager::Secret", "AirflowSecretsAdminPassword"): "Retain",
        ("cluster", "AWS::S3::Bucket", "TaskLogs"): "Retain",
        ("cluster", "AWS::S3::Bucket", "AccessLogs"): "Retain",
        ("cluster", "AWS::S3::Bucket", "JobsData"): "Retain",
        ("image", "AWS::ECR::Repository", "AirflowImageRepository"): "Retain",
    }

    @pytest.mark.parametrize("key", list(RETAINED), ids=lambda k: k[2])
    @pytest.mark.parametrize("name", ["prod", "dev"])
    def test_resource_is_retained_in_prod_and_deleted_in_dev(self, synth, name, key):
        stack, type_, prefix = key
        found = {k: v for k, v in resources_of(synth(name).templates()[stack], type_).items() if k.startswith(prefix)}
        assert len(found) == 1, (prefix, list(found))
        (resource,) = found.values()
        expected = self.RETAINED[key] if name == "prod" else "Delete"
        assert resource["DeletionPolicy"] == expected and resource["UpdateReplacePolicy"] == expected

    def test_the_master_secret_is_the_one_the_db_uses(self, prod):
        t = prod.templates()["database"]
        (attachment,) = resources_of(t, "AWS::SecretsManager::SecretTargetAttachment").values()
        assert attachment["Properties"]["SecretId"]["Ref"].startswith("DatabaseMetadataDbInstanceSecret")

    def test_the_dag_bucket_is_retained_with_retain_data(self, tmp_path):
        s3_prod = synthesize({"stage": "prod", "ui_private_only": "true", "dag_bundle": "s3"}, tmp_path)
        (dags,) = [v for k, v in resources_of(s3_prod.templates()["cluster"], "AWS::S3::Bucket").items() if k.startswith("Dags")]
        assert dags["DeletionPolicy"] == "Retain"


class TestTaskLogGrants:
    def _s3_statements(self, template: dict, role_prefix: str) -> list[dict]:
        return [s for k, s in statements(template) if k.startswith(role_prefix) and any(a.startswith("s3:") for a in as_list(s["Action"]))]

    @pytest.mark.parametrize(
        ("role", "expected"),
        [
            ("WorkersTaskRole", {"ListTaskLogs": "s3:ListBucket", "WriteTaskLogs": ["s3:GetObject", "s3:PutObject"]}),
            ("ServiceRolesTriggerer", {"ListTaskLogs": "s3:ListBucket", "WriteTaskLogs": ["s3:GetObject", "s3:PutObject"]}),
            ("ServiceRolesApiServer", {"ListTaskLogs": "s3:ListBucket", "ReadTaskLogs": "s3:GetObject"}),
            ("ServiceRolesScheduler", {}),
            ("ServiceRolesDagProcessor", {}),
        ],
    )
    def test_task_log_access_by_need(self, dev, role, expected):
        found = self._s3_statements(dev.templates()["cluster"], role)
        assert {s["Sid"]: s["Action"] for s in found} == expected
        for s in found:
            resource = json.dumps(s["Resource"])
            assert "TaskLogs" in resource
            if s["Sid"] != "ListTaskLogs":
                assert s["Resource"]["Fn::Join"][1][-1] == "/task-logs/*"

    def test_nobody_deletes_or_locks_objects(self, any_config):
        forbidden = ("s3:Delete", "s3:PutObjectLegalHold", "s3:PutObjectRetention", "s3:PutLifecycle", "s3:PutBucket", "s3:*")
        for stack, template in any_config.templates().items():
            for logical_id, s in statements(template):
                if logical_id.startswith(("CustomS3AutoDeleteObjects", "Jobs")):
                    continue  # CDK's emptier of destroyable buckets; the jobs' own data prefixes
                bad = [a for a in as_list(s["Action"]) if a.startswith(forbidden)]
                assert not bad, (stack, logical_id, bad)

    def test_only_the_dag_processor_and_workers_read_the_dag_bucket(self, synth):
        t = synth("s3-dags").templates()["cluster"]
        readers = {
            logical_id.split("DefaultPolicy")[0]  # the role's construct path
            for logical_id, s in statements(t)
            if "Dags" in json.dumps(s.get("Resource")) and not logical_id.startswith("CustomS3AutoDeleteObjects")
        }
        assert readers == {"ServiceRolesDagProcessor", "WorkersTaskRole"}, readers


class TestFamiliesPerDeployment:
    def test_every_task_definition_family_names_the_deployment(self, any_config):
        prefix = f"{any_config.config.deployment_name}-"
        families = []
        for stack in ("cluster", "airflow"):
            for logical_id, td in resources_of(any_config.templates()[stack], "AWS::ECS::TaskDefinition").items():
                family = td["Properties"].get("Family")
                assert isinstance(family, str) and family.startswith(prefix), (logical_id, family)
                families.append(family)
        assert len(families) == len(set(families))

    def test_another_project_gets_other_families(self, tmp_path):
        other = synthesize({"project_name": "team2"}, tmp_path)
        families = {td["Properties"]["Family"] for td in resources_of(other.templates()["airflow"], "AWS::ECS::TaskDefinition").values()}
        assert families == {"team2-dev-scheduler", "team2-dev-api-server", "team2-dev-dag-processor", "team2-dev-triggerer"}

    def test_the_executor_runs_the_workers_family(self, dev):
        (worker_td,) = [td for k, td in resources_of(dev.templates()["cluster"], "AWS::ECS::TaskDefinition").items() if k.startswith("WorkersTaskDefinition")]
        (scheduler,) = [c for c in _containers(dev.templates()["airflow"], "SchedulerTaskDefinition") if c["Name"] == "scheduler"]
        env = {e["Name"]: e["Value"] for e in scheduler["Environment"]}
        assert env["AIRFLOW__AWS_ECS_EXECUTOR__TASK_DEFINITION"] == worker_td["Properties"]["Family"] == "airflow-dev-worker"


def test_the_db_has_enhanced_monitoring(any_config):
    """Security Hub RDS.6 (docs/security.md, section 7)."""
    from constructs_lib.metadata_db import ENHANCED_MONITORING_INTERVAL_SECONDS

    t = any_config.templates()["database"]
    (db,) = resources_of(t, "AWS::RDS::DBInstance").values()
    assert db["Properties"]["MonitoringInterval"] == ENHANCED_MONITORING_INTERVAL_SECONDS == 60
    role = db["Properties"]["MonitoringRoleArn"]["Fn::GetAtt"][0]
    trust = t["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [{"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "monitoring.rds.amazonaws.com"}}]
