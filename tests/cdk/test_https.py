"""HTTPS on the user's own domain: certificate, alias record, base URL, proxy headers, cookies."""

from __future__ import annotations

import asyncio

import pytest
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from constructs_lib.ingress import ALB_IDLE_TIMEOUT_SECONDS
from tests.cdk.conftest import CONFIGURATIONS, TEST_CERTIFICATE, resources_of, synthesize
from tests.cdk.test_stacks import container, env_of

DOMAIN = "airflow.example.com"


def subnet_cidrs(network_template: dict, subnet_type: str) -> set[str]:
    return {
        s["Properties"]["CidrBlock"]
        for s in resources_of(network_template, "AWS::EC2::Subnet").values()
        if {"Key": "aws-cdk:subnet-type", "Value": subnet_type} in s["Properties"]["Tags"]
    }


class TestIssuedCertificate:
    @pytest.fixture(scope="class")
    def app(self, synth):
        return synth("issued-certificate")

    def test_dns_validated_certificate_for_the_domain_in_its_zone(self, app):
        app.template("airflow").has_resource_properties(
            "AWS::CertificateManager::Certificate",
            {
                "DomainName": DOMAIN,
                "ValidationMethod": "DNS",
                "DomainValidationOptions": [{"DomainName": DOMAIN, "HostedZoneId": "Z0123456789ABCDEFGHIJ"}],
            },
        )

    def test_alias_record_points_the_domain_at_the_load_balancer(self, app):
        t = app.template("airflow").to_json()
        (record,) = resources_of(t, "AWS::Route53::RecordSet").values()
        props = record["Properties"]
        assert (props["Name"], props["Type"], props["HostedZoneId"]) == (DOMAIN + ".", "A", "Z0123456789ABCDEFGHIJ")
        (alb_id,) = resources_of(t, "AWS::ElasticLoadBalancingV2::LoadBalancer")
        assert props["AliasTarget"]["DNSName"]["Fn::Join"][1][1] == {"Fn::GetAtt": [alb_id, "DNSName"]}

    def test_https_listener_uses_the_certificate_and_http_redirects(self, app):
        t = app.template("airflow").to_json()
        (cert_id,) = resources_of(t, "AWS::CertificateManager::Certificate")
        listeners = {lst["Properties"]["Port"]: lst["Properties"] for lst in resources_of(t, "AWS::ElasticLoadBalancingV2::Listener").values()}
        assert listeners[443]["Certificates"] == [{"CertificateArn": {"Ref": cert_id}}]
        assert listeners[80]["DefaultActions"][0]["Type"] == "redirect"

    def test_base_url_and_output_use_the_domain(self, app):
        t = app.template("airflow").to_json()
        for name in ("scheduler", "api-server", "dag-processor", "triggerer"):
            assert env_of(container(t, name))["AIRFLOW__API__BASE_URL"] == f"https://{DOMAIN}"
        assert t["Outputs"]["AirflowUiUrl"]["Value"] == f"https://{DOMAIN}"

    def test_session_cookies_are_secure(self, app):
        env = env_of(container(app.template("airflow").to_json(), "api-server"))
        assert env["AIRFLOW__FAB__COOKIE_SECURE"] == "True"


def test_a_given_certificate_is_used_and_none_is_issued(prod):
    t = prod.template("airflow").to_json()
    assert not resources_of(t, "AWS::CertificateManager::Certificate")
    https = next(lst for lst in resources_of(t, "AWS::ElasticLoadBalancingV2::Listener").values() if lst["Properties"]["Port"] == 443)
    assert https["Properties"]["Certificates"] == [{"CertificateArn": TEST_CERTIFICATE}]
    assert env_of(container(t, "api-server"))["AIRFLOW__API__BASE_URL"] == f"https://{DOMAIN}"
    # With a region the configuration checks the certificate's region itself.
    assert not [r for r in t.get("Rules", {}) if "CertificateInStackRegion" in r]


def test_environment_agnostic_certificate_gets_a_region_rule(tmp_path):
    overrides = {k: v for k, v in CONFIGURATIONS["prod"].items() if k not in ("account", "region", "availability_zones")}
    t = synthesize(overrides, tmp_path).template("airflow").to_json()
    (rule,) = [r for name, r in t["Rules"].items() if "CertificateInStackRegion" in name]
    (assertion,) = rule["Assertions"]
    assert assertion["Assert"] == {"Fn::Equals": [{"Ref": "AWS::Region"}, "eu-west-1"]}
    assert "certificate_arn is in eu-west-1" in assertion["AssertDescription"]


def test_dev_without_domain_keeps_insecure_cookies_off_https(dev):
    env = env_of(container(dev.template("airflow").to_json(), "api-server"))
    assert env["AIRFLOW__FAB__COOKIE_SECURE"] == "False"


@pytest.mark.parametrize("name", ["dev", "prod", "private-ui-prod"])
def test_api_server_trusts_forwarded_headers_only_from_the_load_balancer_subnets(synth, name):
    app = synth(name)
    api = container(app.template("airflow").to_json(), "api-server")
    assert api["Command"] == ["api-server", "--proxy-headers"]
    trusted = env_of(api)["FORWARDED_ALLOW_IPS"].split(",")
    alb_subnets = "Private" if app.config.ingress.private_only else "Public"
    assert set(trusted) == subnet_cidrs(app.template("network").to_json(), alb_subnets)
    assert "*" not in trusted and "0.0.0.0/0" not in trusted


def _scheme_seen(trusted: str, client_ip: str) -> tuple[str, str]:
    """Run uvicorn's proxy-header middleware (what --proxy-headers installs) on one request."""
    seen = {}

    async def app(scope, receive, send):
        seen.update(scheme=scope["scheme"], client=scope["client"][0])

    scope = {
        "type": "http", "scheme": "http", "client": (client_ip, 50000), "path": "/", "headers": [
            (b"x-forwarded-proto", b"https"), (b"x-forwarded-for", b"198.51.100.7"),
        ],
    }
    asyncio.run(ProxyHeadersMiddleware(app, trusted_hosts=trusted)(scope, None, None))
    return seen["scheme"], seen["client"]


def test_forwarded_proto_is_honoured_from_the_alb_and_ignored_from_a_worker(dev):
    trusted = env_of(container(dev.template("airflow").to_json(), "api-server"))["FORWARDED_ALLOW_IPS"]
    network = dev.template("network").to_json()
    alb_node = next(iter(subnet_cidrs(network, "Public"))).replace(".0/24", ".37")
    worker = next(iter(subnet_cidrs(network, "Private"))).replace(".0/24", ".52")
    assert _scheme_seen(trusted, alb_node) == ("https", "198.51.100.7")
    assert _scheme_seen(trusted, worker) == ("http", worker)


def test_idle_timeout_suits_long_calls_and_stays_below_the_api_server_keep_alive(dev):
    t = dev.template("airflow").to_json()
    (alb,) = resources_of(t, "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    attributes = {a["Key"]: a["Value"] for a in alb["Properties"]["LoadBalancerAttributes"]}
    idle = int(attributes["idle_timeout.timeout_seconds"])
    assert idle == ALB_IDLE_TIMEOUT_SECONDS > 60
    assert idle < int(env_of(container(t, "api-server"))["AIRFLOW__API__WORKER_TIMEOUT"])

