"""The configuration model: defaults per stage, parsing of -c strings, and every config error."""

from __future__ import annotations

import pytest

from app_config import BUNDLED_ECS_EXECUTOR, ConfigError, TaskSize, load_config
from app_config.fargate import fargate_size_error, valid_memory_values
from app_config.model import OfficeHoursConfig


def errors_of(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    return str(info.value)


class TestDefaults:
    def test_dev_is_cheap_and_destroyable(self):
        config = load_config({})
        assert config.stage == "dev"
        assert config.network.nat_gateways == 1
        assert config.database.multi_az is False
        assert config.retain_data is False
        assert config.services.scheduler_count == 1
        assert config.executor.executor_class == BUNDLED_ECS_EXECUTOR

    def test_prod_retains_data_and_runs_ha(self):
        config = load_config({"stage": "prod", "ui_private_only": "true"})
        assert config.retain_data is True
        assert config.database.multi_az is True
        assert config.database.backup_retention_days == 7
        assert config.services.scheduler_count == 2
        assert config.services.api_server_count == 2
        assert config.ingress.allowed_cidrs == ("10.0.0.0/16",), "private-only defaults to the VPC"

    def test_lean_is_spot_small_and_without_nat(self):
        config = load_config({"stage": "lean"})
        assert config.services.capacity_provider == "FARGATE_SPOT"
        assert config.network.nat_gateways == 0 and config.network.task_public_ip is True
        assert config.services.scheduler_size == TaskSize(512, 1024)
        assert config.services.triggerer_size == TaskSize(256, 512)
        assert config.executor.worker_size == TaskSize(512, 1024)
        assert config.monitoring.container_insights is False
        assert config.database.instance_type == "t4g.micro" and config.database.multi_az is False
        # the whole environment sleeps outside Monday-Friday 08:00-18:00 UTC (README, "Cost")
        assert config.office_hours == OfficeHoursConfig(
            "environment", "cron(0 8 ? * MON-FRI *)", "cron(0 18 ? * MON-FRI *)", "UTC"
        )
        assert load_config({"stage": "lean", "office_hours_scope": "none"}).office_hours is None
        assert load_config({}).office_hours is None and load_config({"stage": "prod", "ui_private_only": "true"}).office_hours is None
        # a key given by the user still wins over the stage's default
        assert load_config({"stage": "lean", "services_capacity_provider": "FARGATE"}).services.capacity_provider == "FARGATE"

    def test_monitoring_defaults_and_alarm_email(self):
        config = load_config({})
        assert config.monitoring.alarm_email is None
        assert config.monitoring.airflow_metrics and config.monitoring.dashboard and config.monitoring.container_insights
        assert load_config({"alarm_email": "ops@example.com"}).monitoring.alarm_email == "ops@example.com"

    def test_cli_strings_are_parsed(self):
        config = load_config(
            {"nat_gateways": "0", "db_multi_az": "yes", "worker_cpu": "2048", "worker_memory_mib": "4096",
             "ui_allowed_cidrs": "198.51.100.0/24, 203.0.113.0/24"}
        )
        assert config.network.nat_gateways == 0
        assert config.database.multi_az is True
        assert config.executor.worker_size == TaskSize(2048, 4096)
        assert config.ingress.allowed_cidrs == ("198.51.100.0/24", "203.0.113.0/24")

    def test_domain_keys_are_normalized(self):
        ingress = load_config(
            {"domain_name": "Airflow.Example.com.", "hosted_zone_id": "/hostedzone/Z0123456789ABCDEFGHIJ",
             "hosted_zone_name": "example.com."}
        ).ingress
        assert (ingress.domain_name, ingress.hosted_zone_id, ingress.hosted_zone_name) == (
            "airflow.example.com", "Z0123456789ABCDEFGHIJ", "example.com"
        )
        assert ingress.https

    def test_zone_apex_is_a_valid_domain(self):
        assert load_config({"domain_name": "example.com", "hosted_zone_id": "Z1", "hosted_zone_name": "example.com"}).ingress.https

    def test_ecs_exec_with_a_writable_root_is_accepted(self):
        config = load_config({"enable_ecs_exec": "true", "read_only_root_filesystem": "false"})
        assert config.enable_ecs_exec and not config.read_only_root_filesystem

    def test_cdk_feature_flags_are_not_config_keys(self):
        load_config({"@aws-cdk/core:checkSecretUsage": True, "availability-zones:account=1:region=x": []})


class TestErrors:
    """Each bad input fails before synthesis with a message naming the key and the fix."""

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ({"worker_cpu": "256", "worker_memory_mib": "4096"}, "worker_cpu/worker_memory_mib: memory=4096 MiB is not accepted with cpu=256; use 512, 1024 or 2048 MiB"),
            ({"scheduler_cpu": "300"}, "scheduler_cpu/scheduler_memory_mib: cpu=300 is not a Fargate CPU size"),
            ({"api_server_cpu": "1024", "api_server_memory_mib": "1024"}, "use 2048 to 8192 in steps of 1024 MiB"),
            ({"vpc_cidr": "10.0.0.0/33"}, "vpc_cidr='10.0.0.0/33' is not an IPv4 CIDR block"),
            ({"vpc_cidr": "10.0.0.1/16"}, "vpc_cidr='10.0.0.1/16' is not an IPv4 CIDR block"),
            ({"vpc_cidr": "10.0.0.0/24"}, "vpc_cidr='10.0.0.0/24': the prefix must be /16 to /22"),
            ({"ui_allowed_cidrs": "0.0.0.0/0,not-a-cidr"}, "ui_allowed_cidrs='not-a-cidr' is not an IPv4 CIDR block"),
            ({"stage": "staging"}, "stage='staging' is not a stage; use one of: dev, prod"),
            ({"nat_gateways": "3"}, "nat_gateways=3: must be 0 to 2"),
            ({"nat_gateways": "-1"}, "nat_gateways=-1: must be 0 to 2"),
            ({"nat_gateways": "two"}, "nat_gateways='two': expected a whole number"),
            ({"image_uri": "not an image"}, "image_uri='not an image' is not an image reference"),
            ({"image_uri": "Repo/UPPER:tag"}, "is not an image reference"),
            ({"image_uri": "apache/airflow:3.3.2", "image_tag": "v1"}, "image_uri and image_tag: set at most one of them"),
            ({"stage": "prod"}, "domain_name: prod serves the UI over HTTPS only; set domain_name, hosted_zone_id and hosted_zone_name"),
            ({"domain_name": "airflow.example.com"}, "domain_name: set hosted_zone_id and hosted_zone_name of the Route 53 public hosted zone"),
            ({"domain_name": "airflow.example.com", "hosted_zone_id": "Z0123456789ABCDEFGHIJ", "hosted_zone_name": "example.org"},
             "hosted_zone_name='example.org' does not end domain_name='airflow.example.com': use the zone that holds the domain"),
            ({"domain_name": "airflow.example.com", "hosted_zone_id": "Z0123456789ABCDEFGHIJ", "hosted_zone_name": "ample.com"},
             "hosted_zone_name='ample.com' does not end domain_name"),
            ({"account": "123456789012", "region": "us-east-1", "availability_zones": "us-east-1a,us-east-1b",
              "domain_name": "airflow.example.com", "hosted_zone_id": "Z0123456789ABCDEFGHIJ", "hosted_zone_name": "example.com",
              "certificate_arn": "arn:aws:acm:eu-west-1:123456789012:certificate/abc"},
             "certificate_arn is in eu-west-1, the stacks deploy to us-east-1: a load balancer uses certificates of its own region only"),
            ({"certificate_arn": "arn:aws:acm:eu-west-1:123456789012:certificate/abc"},
             "certificate_arn: set domain_name (with hosted_zone_id and hosted_zone_name) too; a certificate cannot cover the load balancer's own"),
            ({"hosted_zone_id": "Z0123456789ABCDEFGHIJ"}, "hosted_zone_id/hosted_zone_name: set domain_name too"),
            ({"domain_name": "airflow.example.com", "hosted_zone_id": "example.com", "hosted_zone_name": "example.com"},
             "hosted_zone_id='example.com': a Route 53 zone ID looks like Z0123456789ABCDEFGHIJ"),
            ({"domain_name": "http://airflow", "hosted_zone_id": "Z1", "hosted_zone_name": "airflow"}, "domain_name='http://airflow': give a host name"),
            ({"certificate_arn": "arn:aws:iam::123456789012:role/x"}, "is not an ACM certificate ARN"),
            ({"log_retention_days": "10"}, "log_retention_days=10: CloudWatch Logs accepts only"),
            ({"db_backup_retention_days": "40"}, "db_backup_retention_days=40: RDS keeps automated backups 1 to 35 days"),
            ({"worker_capacity_provider": "EC2"}, "worker_capacity_provider='EC2': use FARGATE or FARGATE_SPOT"),
            ({"dag_bundle": "svn"}, "dag_bundle='svn': use image (dags/ baked into the image), s3 or git"),
            ({"dag_bundle": "git"}, "dag_bundle=git: set dag_bundle_git_url to the repository"),
            ({"dag_bundle": "git", "dag_bundle_git_url": "http://git.example.com/dags.git"},
             "dag_bundle_git_url='http://git.example.com/dags.git': give an https:// or ssh:// URL"),
            ({"dag_bundle": "git", "dag_bundle_git_url": "file:///srv/dags.git"},
             "dag_bundle_git_url='file:///srv/dags.git': give an https:// or ssh:// URL"),
            ({"dag_bundle": "git", "dag_bundle_git_url": "https://me:ghp_x@github.com/example/dags.git"},
             "with no credentials in it; the token goes in the secret named by dag_bundle_git_secret"),
            ({"dag_bundle": "git", "dag_bundle_git_url": "ssh://git@github.com/example/dags.git"},
             "an ssh URL needs a private key; set dag_bundle_git_secret"),
            ({"dag_bundle": "git", "dag_bundle_git_url": "https://github.com/example/dags.git",
              "dag_bundle_git_branch": "feature..x"}, "dag_bundle_git_branch='feature..x' is not a branch name"),
            ({"dag_bundle_git_refresh_seconds": "2"}, "dag_bundle_git_refresh_seconds=2: must be 5 to 86400 seconds"),
            ({"dag_bundle_git_secret": "arn:aws:s3:::bucket"}, "dag_bundle_git_secret='arn:aws:s3:::bucket': give a Secrets Manager secret name"),
            ({"executor_class": "not a path"}, "executor_class='not a path': give the executor's import path"),
            ({"account": "123"}, "account='123': an AWS account ID is 12 digits"),
            ({"account": "123456789012"}, "account/region: set both"),
            ({"db_multi_az": "maybe"}, "db_multi_az='maybe': expected true or false"),
            ({"enable_ecs_exec": "true"}, "enable_ecs_exec: ECS Exec does not work with a read-only root filesystem"),
            ({"enable_ecs_exec": "true"}, "also set read_only_root_filesystem=false while you need exec"),
            ({"nat_gatways": "1"}, "nat_gatways: unknown configuration key; did you mean nat_gateways?"),
            ({"alarm_email": "ops@"}, "alarm_email='ops@' is not an e-mail address; write it like -c alarm_email=ops@example.com"),
            ({"alarm_email": "a b@example.com"}, "alarm_email='a b@example.com' is not an e-mail address"),
            ({"task_public_ip": "true"}, "task_public_ip=true with nat_gateways=1: public IPs replace the NAT gateways"),
            ({"services_capacity_provider": "SPOT"}, "services_capacity_provider='SPOT': use FARGATE or FARGATE_SPOT"),
            ({"stage": "lean", "nat_gateways": "1"}, "task_public_ip=true with nat_gateways=1"),
        ],
    )
    def test_bad_input_is_named_with_its_fix(self, raw, expected):
        assert expected in errors_of(raw)

    def test_every_problem_is_reported_at_once(self):
        message = errors_of({"nat_gateways": "9", "vpc_cidr": "nope", "worker_cpu": "3"})
        assert "nat_gateways=9" in message and "vpc_cidr='nope'" in message and "worker_cpu" in message
        assert "cdk synth -c key=value" in message

    @pytest.mark.parametrize(
        "uri",
        [
            "apache/airflow:3.3.2",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/airflow:3.3.2",
            "localhost:5000/team/airflow@sha256:" + "a" * 64,
            "public.ecr.aws/x/airflow",
        ],
    )
    def test_valid_image_uris_pass(self, uri):
        assert load_config({"image_uri": uri}).image.image_uri == uri


class TestFargateSizes:
    """Source: Fargate task CPU and memory table (app_config/fargate.py)."""

    def test_every_listed_pair_is_valid(self):
        for cpu in (256, 512, 1024, 2048, 4096, 8192, 16384):
            for memory in valid_memory_values(cpu):
                assert fargate_size_error(cpu, memory) is None

    @pytest.mark.parametrize(("cpu", "memory"), [(256, 1536), (512, 512), (4096, 31744), (8192, 18432), (16384, 30720)])
    def test_unlisted_pairs_are_rejected(self, cpu, memory):
        assert fargate_size_error(cpu, memory) is not None
