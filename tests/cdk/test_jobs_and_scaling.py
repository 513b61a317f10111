"""ECS jobs from DAGs and scheduled/automatic scaling: configuration errors, template assertions,
and checkov and hadolint on what these features add.

The run of the example job against moto with IAM enforced is in ``tests/e2e/test_ecs_job.py``;
moto checks only actions for ECS and CloudWatch Logs, so the resources and conditions of the
workers' grants are asserted here.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from aws_cdk.assertions import Match

from app_config import ConfigError, load_config
from app_config.schedules import cron_error, timezone_error
from tests.cdk.conftest import PROJECT_ROOT, resources_of
from tests.cdk.test_scanners import BIN, checkov_failures, checkov_skips

JOB_VARIABLE = "AIRFLOW_VAR_ECS_JOB_UPLOAD_FILE_TO_S3"


def errors_of(raw: dict, **kwargs) -> str:
    with pytest.raises(ConfigError) as raised:
        load_config(raw, **kwargs)
    return str(raised.value)


class TestConfigErrors:
    """Each bad input is refused before synthesis with the key and the fix."""

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ({"office_hours_start": "cron(0 7 * * MON-FRI *)"}, "office_hours_start='cron(0 7 * * MON-FRI *)': exactly one of day-of-month and day-of-week must be '?'"),
            ({"office_hours_stop": "0 19 * * 1-5"}, "office_hours_stop='0 19 * * 1-5': write a cron expression like cron(0 7 ? * MON-FRI *)"),
            ({"office_hours_stop": "cron(0 19 ? * MON-FRI)"}, "AWS cron expressions have 6 fields"),
            ({"office_hours_start": "cron(0 25 ? * MON-FRI *)"}, "hours field '25': use values 0-23"),
            ({"office_hours_start": "cron(0 7 ? * MON-FRY *)"}, "day-of-week field 'MON-FRY'"),
            ({"office_hours_start": "cron(? 7 ? * MON *)"}, "minutes field '?': '?' is allowed only in day-of-month or day-of-week"),
            ({"office_hours_timezone": "Europe/Atlantis"}, "office_hours_timezone: 'Europe/Atlantis' is not an IANA time zone name; write it like Europe/Berlin or UTC"),
            ({"office_hours_timezone": "CEST+2"}, "is not an IANA time zone name"),
            ({"office_hours_scope": "night"}, "office_hours_scope='night': use none (always on), ui"),
            ({"api_server_scale_on": "cpu", "api_server_min_count": "5", "api_server_max_count": "3"}, "api_server_min_count=5 is greater than api_server_max_count=3; raise api_server_max_count or lower api_server_min_count"),
            ({"api_server_scale_on": "memory"}, "api_server_scale_on='memory': use none"),
            ({"api_server_scale_on": "cpu", "api_server_target_cpu_percent": "95"}, "api_server_target_cpu_percent=95: use 10 to 90"),
            ({"jobs": '{"upload-file-to-s3": {"cpu": 256, "memory_mib": 4096}}'}, "jobs.upload-file-to-s3.cpu/memory_mib: memory=4096 MiB is not accepted with cpu=256; use 512, 1024 or 2048 MiB"),
            ({"jobs": '{"upload-file-to-s3": {"cpu": 300}}'}, "jobs.upload-file-to-s3.cpu/memory_mib: cpu=300 is not a Fargate CPU size"),
            ({"jobs": '{"no-such-job": {}}'}, "jobs.no-such-job: no jobs/no-such-job/Dockerfile; create the job's directory with its Dockerfile or remove the job"),
            ({"jobs": '{"upload-file-to-s3": {"s3_write_prefixes": ["/abs/"]}}'}, "jobs.upload-file-to-s3.s3_write_prefixes: '/abs/' is not a key prefix of the data bucket"),
            ({"jobs": '{"upload-file-to-s3": {"s3_read_prefixes": ["raw/*"]}}'}, "'raw/*' is not a key prefix"),
            ({"jobs": '{"upload-file-to-s3": {"s3_read_prefixes": ["a/../b/"]}}'}, "'a/../b/' is not a key prefix"),
            ({"jobs": '{"upload-file-to-s3": {"s3_write_prefixes": ["no-slash"]}}'}, "'no-slash' is not a key prefix"),
            ({"jobs": '{"upload-file-to-s3": {"memory": 512}}'}, "jobs.upload-file-to-s3.memory: unknown job setting; use cpu, memory_mib"),
            ({"jobs": '{"Upload_Job": {}}'}, "jobs.Upload_Job: a job name is 1-32 lowercase letters"),
            ({"jobs": "{not json"}, "jobs: not valid JSON"),
        ],
    )
    def test_bad_input_is_named_with_its_fix(self, raw, expected):
        assert expected in errors_of(raw)

    def test_a_job_directory_without_dockerfile_is_refused(self, tmp_path):
        (tmp_path / "empty-job").mkdir()
        assert "empty-job/Dockerfile; create the job" in errors_of({"jobs": {"empty-job": {}}}, jobs_dir=tmp_path)

    @pytest.mark.parametrize(
        "expression",
        ["cron(0 7 ? * MON-FRI *)", "cron(30 18 ? * 2-6 *)", "cron(0/15 8-17 ? * MON,WED,FRI *)",
         "cron(0 6 1 * ? *)", "cron(0 6 L * ? 2027)", "cron(0 6 ? * 6#3 *)", "cron(0 6 15W * ? *)", "cron(0 22 ? JAN-MAR SUN *)"],
    )
    def test_aws_cron_expressions_pass(self, expression):
        assert cron_error(expression) is None

    @pytest.mark.parametrize("name", ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires"])
    def test_iana_time_zones_pass(self, name):
        assert timezone_error(name) is None

    def test_defaults_have_the_example_job_and_no_scaling(self):
        config = load_config({})
        assert [(j.name, j.size.cpu, j.size.memory_mib, j.s3_write_prefixes) for j in config.jobs] == [
            ("upload-file-to-s3", 256, 512, ("uploads/",))
        ]
        assert config.office_hours is None and config.api_server_autoscaling is None

    def test_cli_strings_are_parsed(self):
        config = load_config(
            {"office_hours_scope": "environment", "office_hours_timezone": "Europe/Berlin",
             "api_server_scale_on": "requests", "api_server_min_count": "2", "api_server_max_count": "6"}
        )
        assert (config.office_hours.scope, config.office_hours.timezone) == ("environment", "Europe/Berlin")
        auto = config.api_server_autoscaling
        assert (auto.metric, auto.min_count, auto.max_count, auto.target_requests_per_task) == ("requests", 2, 6, 1000)


def _policy_statements(template: dict, logical_prefix: str) -> list[dict]:
    [policy] = [r for k, r in resources_of(template, "AWS::IAM::Policy").items() if k.startswith(logical_prefix)]
    return policy["Properties"]["PolicyDocument"]["Statement"]


def _by_sid(statements: list[dict]) -> dict[str, dict]:
    return {s["Sid"]: s for s in statements if "Sid" in s}


class TestEcsJobs:
    def test_the_job_has_its_own_task_definition_roles_and_log_group(self, dev):
        t = dev.template("cluster")
        t.has_resource_properties(
            "AWS::ECS::TaskDefinition",
            {
                "Cpu": "256",
                "Memory": "512",
                "RequiresCompatibilities": ["FARGATE"],
                "TaskRoleArn": {"Fn::GetAtt": [Match.string_like_regexp("^JobsUploadFileToS3TaskRole"), "Arn"]},
                "ExecutionRoleArn": {"Fn::GetAtt": [Match.string_like_regexp("^JobsUploadFileToS3ExecutionRole"), "Arn"]},
                "ContainerDefinitions": [
                    Match.object_like(
                        {
                            "Name": "job",
                            "ReadonlyRootFilesystem": True,
                            "Privileged": False,
                            "LogConfiguration": {
                                "LogDriver": "awslogs",
                                "Options": Match.object_like(
                                    {"awslogs-group": {"Ref": Match.string_like_regexp("^JobsUploadFileToS3Logs")}, "awslogs-stream-prefix": "job"}
                                ),
                            },
                        }
                    )
                ],
            },
        )
        groups = resources_of(t.to_json(), "AWS::Logs::LogGroup")
        (group,) = [v for k, v in groups.items() if k.startswith("JobsUploadFileToS3Logs")]
        assert group["Properties"]["RetentionInDays"] == 30
        # Named per deployment (the workers' stack names it without a cross-stack reference); a
        # replacement (the name came with this change) keeps the old group and its logs.
        assert group["Properties"]["LogGroupName"] == "/airflow-dev/jobs/upload-file-to-s3"
        assert group["UpdateReplacePolicy"] == "Retain"

    def test_the_job_role_writes_only_its_prefix_of_the_data_bucket(self, dev):
        statements = _policy_statements(dev.template("cluster").to_json(), "JobsUploadFileToS3TaskRoleDefaultPolicy")
        assert len(statements) == 1
        [statement] = statements
        assert "s3:PutObject" in statement["Action"] and not any(a.startswith(("s3:Get", "s3:Delete", "s3:List")) for a in statement["Action"])
        bucket_arn, suffix = statement["Resource"]["Fn::Join"][1]
        assert bucket_arn["Fn::GetAtt"][0].startswith("JobsData") and suffix == "/uploads/*"

    def test_read_prefixes_grant_reads_there_only(self, synth, tmp_path_factory):
        from tests.cdk.conftest import synthesize

        jobs = '{"upload-file-to-s3": {"cpu": 512, "memory_mib": 1024, "s3_read_prefixes": ["raw/"], "s3_write_prefixes": ["out/a/"]}}'
        synthesized = synthesize({"jobs": jobs}, tmp_path_factory.mktemp("cdk-jobs-read"))
        statements = _policy_statements(synthesized.template("cluster").to_json(), "JobsUploadFileToS3TaskRoleDefaultPolicy")
        suffixes = sorted(
            part for s in statements for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
            if isinstance(r, dict) and "Fn::Join" in r for part in r["Fn::Join"][1] if isinstance(part, str)
        )
        assert suffixes == ["/out/a/*", "/raw/*"]
        readers = [s for s in statements if "s3:GetObject*" in s["Action"]]
        assert len(readers) == 1 and "/raw/*" in json.dumps(readers[0]) and "s3:PutObject" not in readers[0]["Action"]

    def test_workers_may_run_follow_stop_and_reattach_only_the_jobs(self, dev):
        statements = _by_sid(_policy_statements(dev.template("cluster").to_json(), "WorkersTaskRoleDefaultPolicy"))
        family = [r for r in resources_of(dev.template("cluster").to_json(), "AWS::ECS::TaskDefinition") if r.startswith("JobsUploadFileToS3")]
        job_family = resources_of(dev.template("cluster").to_json(), "AWS::ECS::TaskDefinition")[family[0]]["Properties"]["Family"]

        # Every ECS statement is limited to the jobs cluster (a cluster of their own), never the
        # cluster of the services and workers, whose task overrides carry Execution API tokens.
        clusters = resources_of(dev.template("cluster").to_json(), "AWS::ECS::Cluster")
        (jobs_cluster,) = [k for k in clusters if k.startswith("JobsCluster")]
        in_jobs_cluster = {"ArnEquals": {"ecs:cluster": {"Fn::GetAtt": [jobs_cluster, "Arn"]}}}
        run = statements["RunJobs"]
        assert run["Action"] == "ecs:RunTask" and f":task-definition/{job_family}:*" in json.dumps(run["Resource"])
        assert run["Condition"] == in_jobs_cluster
        follow = statements["FollowJobs"]
        assert follow["Action"] == ["ecs:DescribeTasks", "ecs:StopTask"]
        assert follow["Resource"]["Fn::Join"][1][-3:] == [":task/", {"Ref": jobs_cluster}, "/*"]
        assert follow["Condition"] == in_jobs_cluster
        reattach = statements["ReattachJobs"]
        assert reattach["Action"] == "ecs:ListTasks" and reattach["Resource"] == "*"
        assert reattach["Condition"] == in_jobs_cluster
        pass_role = statements["PassJobRoles"]
        assert pass_role["Action"] == "iam:PassRole"
        assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
        assert sorted(r["Fn::GetAtt"][0].rsplit("Role", 1)[0] for r in pass_role["Resource"]) == [
            "JobsUploadFileToS3Execution", "JobsUploadFileToS3Task",
        ]
        logs = statements["ReadJobLogs"]
        assert logs["Action"] == "logs:GetLogEvents"
        parts = logs["Resource"]["Fn::Join"][1]
        assert parts[-1] == ":log-group:/airflow-dev/jobs/upload-file-to-s3:log-stream:job/*"

    def test_no_other_job_grant_and_no_wildcard_action(self, dev):
        statements = _policy_statements(dev.template("cluster").to_json(), "WorkersTaskRoleDefaultPolicy")
        actions = {a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
        assert {a for a in actions if not a.startswith("s3:")} == {
            "ecs:RunTask", "ecs:DescribeTasks", "ecs:StopTask", "ecs:ListTasks", "iam:PassRole", "logs:GetLogEvents",
            "secretsmanager:GetSecretValue",  # connections and variables: tests/cdk/test_connections_backend.py
        }
        assert not any("*" in a.split(":")[1] for a in actions if not a.startswith("s3:"))

    def test_workers_find_the_job_in_an_airflow_variable(self, dev):
        from tests.cdk.test_stacks import container, env_of

        # The workers' task definition the scheduler launches is in the Airflow stack.
        value = env_of(container(dev.template("airflow").to_json(), "worker"))[JOB_VARIABLE]
        rendered = json.dumps(value)
        for key in ("cluster", "task_definition", "container_name", "subnets", "security_groups", "log_group", "log_stream_prefix", "data_bucket", "region"):
            assert f'\\"{key}\\":' in rendered, key
        assert "SecurityGroupsJobs" in rendered and "PrivateSubnet1" in rendered and "PrivateSubnet2" in rendered
        # Physical names for what is per job; imports only of what exists in every configuration.
        assert '\\"task_definition\\":\\"airflow-dev-job-upload-file-to-s3\\"' in rendered
        assert '\\"log_group\\":\\"/airflow-dev/jobs/upload-file-to-s3\\"' in rendered
        imported = [v["Fn::ImportValue"] for v in value["Fn::Join"][1] if "Fn::ImportValue" in v]
        expected = ["cluster:ExportsOutputRefJobsCluster", "network:ExportsOutputRefNetworkVpcPrivateSubnet1",
                    "network:ExportsOutputRefNetworkVpcPrivateSubnet2", "network:ExportsOutputFnGetAttSecurityGroupsJobs",
                    "cluster:ExportsOutputRefJobsData"]
        assert len(imported) == len(expected) and all(f"airflow-dev-{e}" in i for e, i in zip(expected, imported)), imported
        # the scheduler and the other services do not get it: only workers run operators
        for name in ("scheduler", "api-server", "dag-processor", "triggerer"):
            assert JOB_VARIABLE not in env_of(container(dev.template("airflow").to_json(), name))

    def test_jobs_group_allows_https_out_and_nothing_in(self, dev):
        groups = resources_of(dev.template("network").to_json(), "AWS::EC2::SecurityGroup")
        [jobs] = [g for k, g in groups.items() if k.startswith("SecurityGroupsJobs")]
        assert "SecurityGroupIngress" not in jobs["Properties"]
        assert [(e["IpProtocol"], e["FromPort"], e["ToPort"], e["CidrIp"]) for e in jobs["Properties"]["SecurityGroupEgress"]] == [
            ("tcp", 443, 443, "0.0.0.0/0")
        ]

    def test_without_jobs_only_the_data_bucket_and_the_cluster_stay_and_there_is_no_job_grant(self, synth):
        """The data bucket and the jobs cluster keep their logical IDs without jobs (jobs on -> off
        -> on loses no data, and the workers' stack may reference both in every configuration);
        no job, and no grant to the workers or the triggerer."""
        t = synth("no-jobs").template("cluster").to_json()
        jobs = {k: r["Type"] for k, r in t["Resources"].items() if k.startswith("Jobs")}
        assert {k for k, type_ in jobs.items() if type_ == "AWS::S3::Bucket"} == {"JobsData2621DEEE"}
        assert {k for k, type_ in jobs.items() if type_ == "AWS::ECS::Cluster"} == {"JobsClusterEB1268C5"}
        assert not [type_ for type_ in jobs.values() if type_.startswith(("AWS::ECS::TaskDefinition", "AWS::IAM::Role", "AWS::Logs::"))]
        assert not {s.get("Sid") for s in _policy_statements(t, "WorkersTaskRoleDefaultPolicy")} & {"RunJobs", "PassJobRoles"}
        assert not [k for k in t["Resources"] if k.startswith("ServiceRolesTriggererDefaultPolicy")] or not {
            s.get("Sid") for s in _policy_statements(t, "ServiceRolesTriggererDefaultPolicy")
        } & {"WaitForDeferredJobs", "ForwardDeferredJobLogs"}

    def test_jobs_change_no_export_and_reach_the_workers_in_their_template(self, synth):
        """A cross-stack reference exists in every configuration or in none: the Cluster and
        Network stacks export the same names with and without jobs (removing the last job cannot
        stop on "Export ... in use"), and the job variables are template values of the Airflow
        stack's worker task definition, never a dynamic reference CloudFormation resolves only when
        the template changes: a job added or removed changes that task definition."""
        from tests.cdk.test_stacks import container, env_of

        with_jobs, without = synth("dev").templates(), synth("no-jobs").templates()
        for role in ("network", "cluster"):
            exports = [{o["Export"]["Name"] for o in t[role]["Outputs"].values() if "Export" in o} for t in (with_jobs, without)]
            assert exports[0] == exports[1], role
        for templates in (with_jobs, without):
            assert "{{resolve:ssm" not in json.dumps(templates)
            assert not resources_of(templates["cluster"], "AWS::SSM::Parameter")
        assert JOB_VARIABLE in env_of(container(with_jobs["airflow"], "worker"))
        assert JOB_VARIABLE not in env_of(container(without["airflow"], "worker"))

    def test_job_dockerfiles_pass_hadolint(self):
        dockerfiles = sorted((PROJECT_ROOT / "jobs").glob("*/Dockerfile"))
        assert dockerfiles
        result = subprocess.run([str(BIN / "hadolint"), *map(str, dockerfiles)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def _scheduled_actions(template: dict) -> dict[str, list[dict]]:
    """Scalable target logical ID prefix (the service) -> its scheduled actions."""
    return {
        k.split("Service")[0]: r["Properties"].get("ScheduledActions", [])
        for k, r in resources_of(template, "AWS::ApplicationAutoScaling::ScalableTarget").items()
    }


class TestScaling:
    def test_default_has_no_scaling(self, dev):
        t = dev.template("airflow")
        t.resource_count_is("AWS::ApplicationAutoScaling::ScalableTarget", 0)
        t.resource_count_is("AWS::Scheduler::Schedule", 0)

    def test_environment_scope_stops_every_service_and_the_database(self, synth):
        t = synth("office-hours-environment").template("airflow")
        actions = _scheduled_actions(t.to_json())
        assert sorted(actions) == ["ApiServer", "DagProcessor", "Scheduler", "Triggerer"]
        for service, scheduled in actions.items():
            by_name = {a["ScheduledActionName"]: a for a in scheduled}
            stop, start = by_name[f"{service}Stop"], by_name[f"{service}Start"]
            assert stop["Schedule"] == "cron(0 19 ? * MON-FRI *)" and start["Schedule"] == "cron(0 7 ? * MON-FRI *)"
            assert stop["Timezone"] == start["Timezone"] == "Europe/Berlin"
            assert stop["ScalableTargetAction"] == {"MinCapacity": 0, "MaxCapacity": 0}
            expected = {"MinCapacity": 1, "MaxCapacity": 6} if service == "ApiServer" else {"MinCapacity": 1, "MaxCapacity": 1}
            assert start["ScalableTargetAction"] == expected
        for action, expression in (("stopDBInstance", "cron(0 19 ? * MON-FRI *)"), ("startDBInstance", "cron(0 7 ? * MON-FRI *)")):
            t.has_resource_properties(
                "AWS::Scheduler::Schedule",
                {
                    "ScheduleExpression": expression,
                    "ScheduleExpressionTimezone": "Europe/Berlin",
                    "State": "ENABLED",
                    "Target": Match.object_like(
                        {
                            "Arn": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":scheduler:::aws-sdk:rds:{action}"]]},
                            "Input": {"Fn::Join": ["", ['{"DbInstanceIdentifier":"', {"Fn::ImportValue": Match.string_like_regexp("MetadataDbInstance")}, '"}']]},
                        }
                    ),
                },
            )
        # the schedules' roles may stop/start exactly the metadata DB
        policies = [p["Properties"]["PolicyDocument"]["Statement"] for k, p in resources_of(t.to_json(), "AWS::IAM::Policy").items() if "SchedulerRole" in k]
        statements = [s for st in policies for s in st]
        rds_statements = [s for s in statements if s["Action"].startswith("rds:")]
        assert sorted(s["Action"] for s in rds_statements) == ["rds:StartDBInstance", "rds:StopDBInstance"]
        assert all(":db:" in json.dumps(s["Resource"]) and "MetadataDbInstance" in json.dumps(s["Resource"]) for s in rds_statements)
        # the rest silence and wake the sleeping services' alarms (test_monitoring)
        assert sorted(s["Action"] for s in statements if s not in rds_statements) == [
            "cloudwatch:DisableAlarmActions", "cloudwatch:EnableAlarmActions"
        ]

    def test_environment_scope_tracks_requests_on_the_ui_target_group(self, synth):
        t = synth("office-hours-environment").template("airflow")
        t.has_resource_properties(
            "AWS::ApplicationAutoScaling::ScalingPolicy",
            {
                "PolicyType": "TargetTrackingScaling",
                "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                    {
                        "TargetValue": 1000,
                        "PredefinedMetricSpecification": Match.object_like({"PredefinedMetricType": "ALBRequestCountPerTarget"}),
                    }
                ),
            },
        )

    def test_ui_scope_scales_only_the_api_server_on_cpu(self, synth):
        t = synth("office-hours-ui").template("airflow")
        actions = _scheduled_actions(t.to_json())
        assert list(actions) == ["ApiServer"]
        assert {a["ScheduledActionName"]: a["ScalableTargetAction"] for a in actions["ApiServer"]} == {
            "ApiServerStop": {"MinCapacity": 0, "MaxCapacity": 0},
            "ApiServerStart": {"MinCapacity": 2, "MaxCapacity": 4},
        }
        assert all(a["Timezone"] == "UTC" for a in actions["ApiServer"])
        # no database schedule: only the two that silence and wake the api-server's alarms
        schedules = resources_of(t.to_json(), "AWS::Scheduler::Schedule").values()
        assert sorted(json.dumps(s["Properties"]["Target"]["Arn"]).split(":")[-1].rstrip('"]}') for s in schedules) == [
            "disableAlarmActions", "enableAlarmActions"
        ]
        t.has_resource_properties(
            "AWS::ApplicationAutoScaling::ScalableTarget", {"MinCapacity": 2, "MaxCapacity": 4, "ScalableDimension": "ecs:service:DesiredCount"}
        )
        t.has_resource_properties(
            "AWS::ApplicationAutoScaling::ScalingPolicy",
            {
                "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                    {"TargetValue": 60, "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}}
                )
            },
        )

    @pytest.mark.parametrize("name", ["office-hours-environment", "office-hours-ui", "no-jobs"])
    def test_checkov_has_no_unskipped_finding(self, synth, name):
        skips = checkov_skips(synth(name).config)
        unexpected = {check: where for check, where in checkov_failures(synth, name).items() if check not in skips}
        assert not unexpected, json.dumps(unexpected, indent=1)
