"""The real scanners on the synthesized templates of every configuration: cfn-lint, cdk-nag
(AwsSolutions), checkov, hadolint on the Dockerfile, and a plaintext-secret scan."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
import yaml
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

from app import build_app
from app_config import load_config
from constructs_lib import nag
from tests.cdk.conftest import CDK_JSON_CONTEXT, CONFIGURATIONS, OPTIONAL_FEATURES, PROJECT_ROOT

BIN = Path(sys.executable).parent
CHECKOV = Path(os.environ.get("CHECKOV_BIN", PROJECT_ROOT / ".venv-checkov" / "bin" / "checkov"))
SKIPS = yaml.safe_load((PROJECT_ROOT / "security" / "checkov-skips.yaml").read_text())


def template_files(synthesized) -> list[str]:
    return [str(s.template_path) for s in synthesized.assembly.stacks.values()]


@pytest.mark.parametrize("name", [*CONFIGURATIONS, *OPTIONAL_FEATURES])
def test_cfn_lint_reports_no_errors(synth, name):
    result = subprocess.run(
        [str(BIN / "cfn-lint"), "--format", "parseable", *template_files(synth(name))],
        capture_output=True, text=True, check=False,
    )
    errors = [line for line in result.stdout.splitlines() if re.search(r":E\d{4}:", line)]
    assert result.returncode & 2 == 0 and not errors, result.stdout + result.stderr


@pytest.mark.parametrize("name", [*CONFIGURATIONS, *OPTIONAL_FEATURES])
def test_cdk_nag_has_no_unacknowledged_finding(synth, name):
    report = AwsSolutionsChecks().validate_scope(synth(name).app)
    found = [
        f"{v.rule_name}: {[r.construct_path for r in v.violating_resources]}" for v in report.violations
    ]
    assert report.success, "\n".join(found)


def acknowledged_findings(scope: IConstruct) -> set[tuple[str, str]]:
    """(construct path, finding ID) of every cdk-nag acknowledgement in ``scope``'s tree."""
    found = set()
    for node in scope.node.find_all():
        for entry in node.node.metadata:
            if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                found |= {(node.node.path, key.split("::", 1)[1]) for key in entry.data if key.startswith("AwsSolutions::")}
    return found


@pytest.mark.parametrize("name", [*CONFIGURATIONS, *OPTIONAL_FEATURES])
def test_every_cdk_nag_acknowledgement_names_a_reported_finding(synth, name, monkeypatch):
    """An acknowledgement whose finding cdk-nag no longer reports on that construct (or below it)
    would hide a future finding there: remove it. The findings are those of the same app built
    with no acknowledgement."""
    acknowledged = acknowledged_findings(synth(name).app)
    assert acknowledged, "no acknowledgement read: has the metadata key changed?"
    monkeypatch.setattr(nag, "acknowledge", lambda construct, findings, reason: None)
    app = cdk.App(context={**CDK_JSON_CONTEXT, **CONFIGURATIONS.get(name, OPTIONAL_FEATURES.get(name, {}))})
    build_app(app, load_config(app.node.get_all_context()))
    reported = [(v.rule_name, r.construct_path) for v in AwsSolutionsChecks().validate_scope(app).violations
                for r in v.violating_resources]
    unused = sorted(
        f"{finding} on {path}"
        for path, finding in acknowledged
        if not any(rule == finding and (where == path or where.startswith(f"{path}/")) for rule, where in reported)
    )
    assert not unused, "acknowledged but not reported:\n" + "\n".join(unused)


def checkov_skips(config) -> dict[str, str]:
    skips = dict(SKIPS["always"])
    if not config.database.multi_az:
        skips.update(SKIPS["when_single_az_db"])
    if not config.ingress.https:
        skips.update(SKIPS["when_no_certificate"])
    if not config.region:
        skips.update(SKIPS["when_no_region"])
    if not config.monitoring.container_insights:
        skips.update(SKIPS["when_no_container_insights"])
    if config.ingress.login_rate_limit:
        skips.update(SKIPS["when_login_rate_limit"])
    return skips


_CHECKOV_RESULTS: dict[str, dict[str, list[str]]] = {}


def checkov_failures(synth, name: str) -> dict[str, list[str]]:
    """Run checkov with no skip on configuration ``name``: failed check ID -> resources."""
    if name not in _CHECKOV_RESULTS:
        assert CHECKOV.exists(), f"checkov not installed at {CHECKOV}; `make test` installs it"
        directory = synth(name).assembly.directory
        result = subprocess.run(
            [str(CHECKOV), "-d", directory, "--framework", "cloudformation", "--skip-download",
             "--quiet", "--compact", "-o", "json"],
            capture_output=True, text=True, check=False,
        )
        reports = json.loads(result.stdout or "[]")
        reports = reports if isinstance(reports, list) else [reports]
        assert sum(r.get("summary", {}).get("passed", 0) for r in reports) > 50, "checkov checked nothing"
        failures: dict[str, list[str]] = {}
        for report in reports:
            for f in report.get("results", {}).get("failed_checks", []):
                failures.setdefault(f["check_id"], []).append(f"{f['resource']} ({f['file_path']})")
        _CHECKOV_RESULTS[name] = failures
    return _CHECKOV_RESULTS[name]


@pytest.mark.parametrize("name", list(CONFIGURATIONS))
def test_checkov_has_no_unskipped_finding(synth, name):
    skips = checkov_skips(synth(name).config)
    assert all(reason.strip() for reason in skips.values())
    unexpected = {check: where for check, where in checkov_failures(synth, name).items() if check not in skips}
    assert not unexpected, json.dumps(unexpected, indent=1)


def test_every_checkov_skip_is_still_needed(synth):
    """A skip that no configuration needs any more would hide a future finding: remove it."""
    needed = set()
    for name in CONFIGURATIONS:
        needed |= set(checkov_failures(synth, name))
    listed = {check for group in SKIPS.values() for check in group}
    assert listed - needed == set(), f"stale skips in security/checkov-skips.yaml: {sorted(listed - needed)}"


def test_hadolint_passes_the_dockerfile():
    result = subprocess.run(
        [str(BIN / "hadolint"), str(PROJECT_ROOT / "docker" / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


SECRET_KEY = re.compile(r"(password|secret|token|private_?key)$", re.IGNORECASE)
#: Keys that name a secret without holding one.
SAFE_KEYS = {"GenerateSecretString", "SecretStringTemplate", "ExcludePunctuation"}
LITERAL_SECRETS = [
    re.compile(r"AKIA[0-9A-Z]{16}"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    # a URL with credentials; placeholders such as <password> or {password} are not credentials
    re.compile(r"postgres(ql)?(\+psycopg2)?://[^:\s\"<{]+:[^@\s\"$<{]+@"),
]


def _literal_secret_keys(node, path=""):
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}/{key}"
            if SECRET_KEY.search(key) and key not in SAFE_KEYS and isinstance(value, str) and value:
                yield here
            yield from _literal_secret_keys(value, here)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _literal_secret_keys(value, f"{path}[{i}]")


@pytest.mark.parametrize("name", list(CONFIGURATIONS))
def test_no_plaintext_secret_in_templates_or_assets(synth, name):
    directory = Path(synth(name).assembly.directory)
    for template in directory.glob("*.template.json"):
        data = json.loads(template.read_text())
        assert not list(_literal_secret_keys(data)), f"{template.name}: literal values under secret-like keys"
        for pattern in LITERAL_SECRETS:
            assert not pattern.search(template.read_text()), f"{template.name} holds {pattern.pattern}"
    staged = [p for p in directory.rglob("*") if p.is_file() and "asset." in str(p)]
    assert staged, "no staged asset found"
    for path in staged:
        text = path.read_text(errors="ignore")
        for pattern in LITERAL_SECRETS:
            assert not pattern.search(text), f"{path.relative_to(directory)} holds {pattern.pattern}"
