"""Compare before- and after-templates of a deployment and report what the change does.

Terms: a *role* is a stack's construct ID in the app (``Network``, ``Database``, ``Image``,
``Cluster``, ``Airflow``); both sides are matched by role, so a renamed stack (a new
``project_name`` or ``stage``) shows as such. A resource is *replaced* when its type changes, when
one of its type's create-only properties changes (registry schema, :mod:`changes.schemas`), or
when such a property names a replaced resource or imports an export whose value changes (the new
physical ID travels). A changed logical ID is a removal plus a creation.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import Any, Iterable

from changes.schemas import DEFAULT_REGION, type_schema
from cloud_assembly import AssemblyError, CloudAssembly, MissingAssembly

#: Resource types whose replacement or removal loses data (or the keys to it): the metadata
#: database and its subnet group, every secret, KMS keys, buckets, the ECR repository, the VPC.
STATEFUL_TYPES = frozenset(
    {
        "AWS::RDS::DBInstance",
        "AWS::RDS::DBSubnetGroup",
        "AWS::SecretsManager::Secret",
        "AWS::KMS::Key",
        "AWS::S3::Bucket",
        "AWS::ECR::Repository",
        "AWS::EC2::VPC",
    }
)
#: Resource types that live in a VPC without naming it, by the property that names their security
#: groups: they follow those groups' VPC. An RDS DB instance cannot follow in place: RDS refuses
#: subnets of another VPC in its DB subnet group, and a new subnet group (create-only
#: ``DBSubnetGroupName``) replaces the instance.
VPC_MEMBERS = {"AWS::RDS::DBInstance": "VPCSecurityGroups"}
#: Template metadata key under which the app records the configuration context of a synthesis.
CONFIGURATION_METADATA_KEY = "AirflowConfiguration"

DATA_LOSS = "data loss"
DEPLOY_FAILURE = "deploy failure"
WARNING = "warning"
#: Kinds that stop ``make deploy`` (unless each resource is allowed by name).
BLOCKING = (DATA_LOSS, DEPLOY_FAILURE)


class CheckError(Exception):
    """Input the check cannot use; the message is one line that says what to do."""


@dataclass(frozen=True)
class StackTemplate:
    """One stack: its role (construct ID), CloudFormation name, template and region (or None)."""

    role: str
    name: str
    template: dict
    region: str | None = None

    @property
    def resources(self) -> dict[str, dict]:
        return self.template.get("Resources", {}) or {}

    @property
    def configuration(self) -> dict[str, Any] | None:
        return (self.template.get("Metadata") or {}).get(CONFIGURATION_METADATA_KEY)

    def exports(self) -> dict[str, tuple[str, Any]]:
        """Export name -> (output ID, value), for exports with a literal name."""
        found = {}
        for output_id, output in (self.template.get("Outputs") or {}).items():
            name = (output.get("Export") or {}).get("Name")
            if isinstance(name, str):
                found[name] = (output_id, output.get("Value"))
        return found


@dataclass
class StackTemplates:
    """One side of a comparison: the stacks by role."""

    stacks: dict[str, StackTemplate] = field(default_factory=dict)

    @classmethod
    def from_assembly(cls, directory: str | Path) -> "StackTemplates":
        """Read the CloudFormation stacks of a cloud assembly (``cdk.out``).

        :raises CheckError: no ``manifest.json``, or a template file missing.
        """
        root = Path(directory)
        try:
            assembly = CloudAssembly(root)
        except MissingAssembly:
            raise CheckError(f"{root} is not a cloud assembly (no manifest.json): run cdk synth into it first") from None
        except AssemblyError as err:
            raise CheckError(str(err)) from None
        stacks = {
            artifact_id: StackTemplate(role=artifact_id, name=stack.stack_name, template=stack.template, region=stack.region)
            for artifact_id, stack in assembly.stacks.items()
        }
        if not stacks:
            raise CheckError(f"{root} holds no CloudFormation stack: synthesize the app into it first")
        return cls(stacks)

    def configuration(self, prefer: str | None = None) -> dict[str, Any] | None:
        """The recorded configuration context (of ``prefer``'s stack when it has one)."""
        order = ([self.stacks[prefer]] if prefer in self.stacks else []) + list(self.stacks.values())
        for stack in order:
            if stack.configuration is not None:
                return stack.configuration
        return None


@dataclass(frozen=True)
class Finding:
    """One thing the change does that hurts.

    :param kind: :data:`DATA_LOSS`, :data:`DEPLOY_FAILURE` or :data:`WARNING`.
    :param stack: the CloudFormation stack name.
    :param logical_id: the resource (or output) concerned.
    :param what: what changes and why it hurts.
    :param keys: configuration keys that caused it; ``exact`` says whether the key was matched by
        value (else: the keys that changed, one of which did it).
    """

    kind: str
    stack: str
    logical_id: str
    resource_type: str
    what: str
    keys: tuple[str, ...] = ()
    exact: bool = False
    config_known: bool = True

    def line(self) -> str:
        cause = ""
        if self.keys:
            cause = f" [configuration key: {', '.join(self.keys)}]" if self.exact else (
                f" [configuration keys changed: {', '.join(self.keys)}]"
            )
        elif self.config_known:
            cause = " [no configuration key changed: a code change]"
        return f"{self.kind.upper()}: {self.stack} {self.logical_id} ({self.resource_type}): {self.what}{cause}"


@dataclass
class Report:
    """The result of :func:`compare`.

    :ivar findings: what hurts (:class:`Finding`).
    :ivar changes: replacements and removals that lose nothing (one line each).
    :ivar new_stacks: stack names not deployed before.
    :ivar configuration_changes: key -> (before, after), when both sides recorded it.
    """

    findings: list[Finding] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    new_stacks: list[str] = field(default_factory=list)
    configuration_changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def blocking(self, allow_replace: Iterable[str] = ()) -> list[Finding]:
        """Findings that stop a deploy: data loss and deploy failures, except on resources whose
        logical ID is in ``allow_replace``."""
        allowed = set(allow_replace)
        return [f for f in self.findings if f.kind in BLOCKING and f.logical_id not in allowed]

    def text(self) -> str:
        lines = []
        if self.configuration_changes:
            def shown(value: Any) -> str:
                return "(default)" if value is None else _short(value)

            lines.append("Configuration changes: " + ", ".join(
                f"{k}: {shown(b)} -> {shown(a)}" for k, (b, a) in sorted(self.configuration_changes.items())
            ))
        for name in self.new_stacks:
            lines.append(f"New stack: {name}")
        if self.findings:
            lines.extend(f.line() for f in self.findings)
        else:
            lines.append("No data loss, no known deploy failure.")
        if self.changes:
            lines.append("Replaced or removed without data loss:")
            lines.extend(f"  {c}" for c in self.changes)
        return "\n".join(lines)


# --- template helpers -------------------------------------------------------------------------

_SUB_REF = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}")


def references(value: Any) -> set[str]:
    """Logical IDs ``value`` names through ``Ref``, ``Fn::GetAtt`` or ``Fn::Sub``."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) and inner else str(inner).split(".")[0]
                if isinstance(target, str):
                    found.add(target)
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                if isinstance(text, str):
                    found.update(_SUB_REF.findall(text))
                if isinstance(inner, list) and len(inner) > 1:
                    found |= references(inner[1])
            else:
                found |= references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= references(inner)
    return found


def imports(value: Any) -> set[str]:
    """Export names ``value`` imports with a literal ``Fn::ImportValue``."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Fn::ImportValue" and isinstance(inner, str):
                found.add(inner)
            else:
                found |= imports(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= imports(inner)
    return found


def _get(value: Any, path: tuple[str, ...]) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if head == "*":
        return [_get(item, rest) for item in value] if isinstance(value, list) else None
    if isinstance(value, dict):
        return _get(value.get(head), rest)
    return None


def _norm(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_difference(before: Any, after: Any, where: str = "") -> tuple[str, Any, Any]:
    """The first place (``/0/Environment/3``) where two JSON values differ, and the values there."""
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after), key=str):
            if _norm(before.get(key)) != _norm(after.get(key)):
                return _first_difference(before.get(key), after.get(key), f"{where}/{key}")
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for index, (b, a) in enumerate(zip(before, after)):
            if _norm(b) != _norm(a):
                return _first_difference(b, a, f"{where}/{index}")
    return where, before, after


@dataclass(frozen=True)
class _Cause:
    text: str
    values: tuple[Any, ...] = ()
    #: the resource moves to another VPC (its create-only ``VpcId`` changes)
    moves_vpc: bool = False


def _replacement(before: dict, after: dict, region: str, replaced: dict[str, _Cause], volatile: dict[str, _Cause]) -> _Cause | None:
    """Why the resource ``before`` -> ``after`` (same logical ID) is replaced, or None."""
    if before.get("Type") != after.get("Type"):
        return _Cause(f"type changes {before.get('Type')} -> {after.get('Type')}", (before.get("Type"), after.get("Type")))
    schema = type_schema(after["Type"], region)
    if schema is None:
        return None
    b_props, a_props = before.get("Properties") or {}, after.get("Properties") or {}
    for path in schema.create_only:
        b_value, a_value = _get(b_props, path), _get(a_props, path)
        prop = "/".join(path)
        if _norm(b_value) != _norm(a_value):
            where, b_leaf, a_leaf = _first_difference(b_value, a_value)
            return _Cause(f"create-only {prop}{where} changes: {_short(b_leaf)} -> {_short(a_leaf)}", (b_value, a_value),
                          moves_vpc=path == ("VpcId",))
        for target in sorted(references(a_value) & set(replaced)):
            return _Cause(f"create-only {prop} names {target}, which is replaced", replaced[target].values,
                          moves_vpc=path == ("VpcId",))
        for name in sorted(imports(a_value) & set(volatile)):
            return _Cause(f"create-only {prop} imports {name}, whose value changes", volatile[name].values,
                          moves_vpc=path == ("VpcId",))
    return None


# --- the comparison -----------------------------------------------------------------------------


def compare(before: StackTemplates, after: StackTemplates) -> Report:
    """Report what deploying ``after`` over ``before`` does (see the module docstring).

    Stacks only in ``after`` are new (nothing to check); stacks only in ``before`` are left alone
    by a deploy (CDK deletes no stack).
    """
    report = Report()
    report.configuration_changes = _configuration_changes(before, after)
    finding = _finding_maker(report.configuration_changes,
                             before.configuration() is not None and after.configuration() is not None)
    common = _pair_stacks(before, after, report, finding)
    replaced, volatile = _replacements(common)
    importers: dict[str, list[str]] = {}
    for source in before.stacks.values():
        for name in imports(source.template.get("Resources")) | imports(source.template.get("Outputs")):
            importers.setdefault(name, []).append(source.name)
    after_exports = {name for s in after.stacks.values() for name in s.exports()}
    for role, (b_stack, a_stack) in common.items():
        _report_replaced(b_stack, a_stack, replaced[role], report, finding)
        _report_removed(b_stack, a_stack, report, finding)
        report.findings.extend(_exports_in_use(b_stack, importers, after_exports, volatile, finding))
        report.findings.extend(_vpc_moves(b_stack, a_stack, replaced[role], volatile, finding))
        report.findings.extend(_listener_moves(b_stack, a_stack, finding))
        report.findings.extend(_scaled_desired_counts(a_stack, finding))
    return report


#: ``finding(kind, stack, logical ID, type, what, values) -> Finding``, made by :func:`_finding_maker`.
_MakeFinding = Callable[[str, str, str, str, str, Iterable[Any]], Finding]


def _configuration_changes(before: StackTemplates, after: StackTemplates) -> dict[str, tuple[Any, Any]]:
    """``key -> (before, after)`` of every configuration key whose value differs, when both
    syntheses recorded their configuration; else empty."""
    before_cfg, after_cfg = before.configuration(), after.configuration()
    if before_cfg is None or after_cfg is None:
        return {}
    return {key: (before_cfg.get(key), after_cfg.get(key)) for key in sorted(set(before_cfg) | set(after_cfg))
            if before_cfg.get(key) != after_cfg.get(key)}


def _finding_maker(changed_keys: dict[str, tuple[Any, Any]], config_known: bool) -> _MakeFinding:
    """A :class:`Finding` factory that names the configuration keys behind a finding: those whose
    old or new value (4 characters or more) appears in the finding's values, else the only key
    that changed, else every changed key (``exact`` False)."""

    def finding(kind: str, stack: str, lid: str, rtype: str, what: str, values: Iterable[Any]) -> Finding:
        text = json.dumps(list(values), default=str)
        exact = [
            k for k, pair in changed_keys.items()
            if any(isinstance(v, (str, int)) and len(str(v)) >= 4 and str(v) in text for v in pair if v is not None)
        ]
        if not exact and len(changed_keys) == 1:
            exact = list(changed_keys)  # the only key that changed
        keys = tuple(exact) if exact else tuple(changed_keys)
        return Finding(kind, stack, lid, rtype, what, keys, bool(exact), config_known)

    return finding


def _pair_stacks(before: StackTemplates, after: StackTemplates, report: Report,
                 finding: _MakeFinding) -> dict[str, tuple[StackTemplate, StackTemplate]]:
    """``role -> (before, after)`` of the stacks deployed under the same name. New stacks go to
    ``report.new_stacks``; a renamed stack's stateful resources are data loss (the deploy creates
    a new, empty stack and leaves the old one deployed)."""
    common = {}
    for role, after_stack in after.stacks.items():
        before_stack = before.stacks.get(role)
        if before_stack is None:
            report.new_stacks.append(after_stack.name)
        elif before_stack.name != after_stack.name:
            for lid, res in before_stack.resources.items():
                if res.get("Type") in STATEFUL_TYPES:
                    report.findings.append(finding(
                        DATA_LOSS, before_stack.name, lid, res["Type"],
                        f"the stack is renamed to {after_stack.name}: the deploy creates a new stack whose "
                        f"{res['Type']} starts empty, and leaves this one deployed",
                        (before_stack.name, after_stack.name),
                    ))
        else:
            common[role] = (before_stack, after_stack)
    return common


def _replacements(common: dict[str, tuple[StackTemplate, StackTemplate]]
                  ) -> tuple[dict[str, dict[str, _Cause]], dict[str, _Cause]]:
    """Replaced resources per stack role (logical ID -> cause) and the exports whose value changes
    (export name -> cause), to a fixpoint: a replaced resource's new ID travels through references
    and exports into other resources' create-only properties."""
    replaced: dict[str, dict[str, _Cause]] = {role: {} for role in common}
    volatile: dict[str, _Cause] = {}
    grew = True
    while grew:
        grew = False
        for role, (b_stack, a_stack) in common.items():
            region = a_stack.region or DEFAULT_REGION
            for lid, a_res in a_stack.resources.items():
                b_res = b_stack.resources.get(lid)
                if b_res is None or lid in replaced[role]:
                    continue
                cause = _replacement(b_res, a_res, region, replaced[role], volatile)
                if cause:
                    replaced[role][lid] = cause
                    grew = True
            b_exports = b_stack.exports()
            for name, (output_id, a_value) in a_stack.exports().items():
                if name in volatile or name not in b_exports:
                    continue
                b_value = b_exports[name][1]
                hit = sorted(references(a_value) & set(replaced[role]))
                if hit:
                    cause = replaced[role][hit[0]]
                    volatile[name] = _Cause(f"it names {hit[0]}, which is replaced", cause.values, cause.moves_vpc)
                elif _norm(b_value) != _norm(a_value):
                    volatile[name] = _Cause(f"{_short(b_value)} -> {_short(a_value)}", (b_value, a_value))
                else:
                    continue
                grew = True
    return replaced, volatile


def _report_replaced(b_stack: StackTemplate, a_stack: StackTemplate, replaced: dict[str, _Cause], report: Report,
                     finding: _MakeFinding) -> None:
    """A replaced stateful resource is data loss, any other a change; a replaced resource with a
    custom name is a deploy failure (the new one is created first, under the same name)."""
    stack = a_stack.name
    for lid, cause in replaced.items():
        rtype = a_stack.resources[lid]["Type"]
        if rtype in STATEFUL_TYPES:
            report.findings.append(finding(DATA_LOSS, stack, lid, rtype,
                                           f"replaced ({cause.text}): the new one starts empty", cause.values))
        else:
            report.changes.append(f"{stack} {lid} ({rtype}) replaced: {cause.text}")
        failure = _custom_name_conflict(b_stack.resources[lid], a_stack.resources[lid], a_stack.region or DEFAULT_REGION)
        if failure:
            report.findings.append(finding(DEPLOY_FAILURE, stack, lid, rtype, failure, cause.values))


def _report_removed(b_stack: StackTemplate, a_stack: StackTemplate, report: Report, finding: _MakeFinding) -> None:
    """A removed stateful resource is data loss (its data no longer used, a successor of the same
    type under a new logical ID starts empty), any other a change."""
    stack = a_stack.name
    added_by_type: dict[str, list[str]] = {}
    for lid, res in a_stack.resources.items():
        if lid not in b_stack.resources:
            added_by_type.setdefault(res["Type"], []).append(lid)
    for lid, res in b_stack.resources.items():
        if lid in a_stack.resources:
            continue
        rtype = res["Type"]
        successors = added_by_type.get(rtype, [])
        moved = f" (its logical ID changes to {successors[0]}?)" if len(successors) == 1 else ""
        if rtype in STATEFUL_TYPES:
            kept = " DeletionPolicy Retain keeps it outside the stack, but" if res.get("DeletionPolicy") == "Retain" else ""
            report.findings.append(finding(
                DATA_LOSS, stack, lid, rtype,
                f"removed{moved}:{kept} the app no longer uses its data" + (
                    "; the new one starts empty" if moved else ""),
                (res.get("Properties"), *_successors(b_stack, a_stack, lid)),
            ))
        else:
            report.changes.append(f"{stack} {lid} ({rtype}) removed{moved}")


def _exports_in_use(b_stack: StackTemplate, importers: dict[str, list[str]], after_exports: set[str],
                    volatile: dict[str, _Cause], finding: _MakeFinding) -> list[Finding]:
    """Deploy failures: an export another stack imports is removed, or its value changes
    (CloudFormation refuses both while the import exists)."""
    found = []
    for name, (output_id, _value) in b_stack.exports().items():
        users = [s for s in importers.get(name, []) if s != b_stack.name]
        if not users:
            continue
        if name not in after_exports:
            found.append(finding(
                DEPLOY_FAILURE, b_stack.name, output_id, "Export",
                f"export {name} is removed while {', '.join(users)} imports it (\"export ... in use\": "
                "this stack is deployed first)", (name,),
            ))
        elif name in volatile:
            found.append(finding(
                DEPLOY_FAILURE, b_stack.name, output_id, "Export",
                f"export {name} changes value ({volatile[name].text}) while {', '.join(users)} imports it: "
                "CloudFormation cannot update an export in use", volatile[name].values,
            ))
    return found


def _successors(b_stack: StackTemplate, a_stack: StackTemplate, lid: str) -> list[Any]:
    """What took the place of the removed ``lid``: the new values of the properties that named
    it (a security group's ``VpcId`` that named the app's VPC now holds an existing VPC's ID)."""
    found = []
    for other, b_res in b_stack.resources.items():
        a_res = a_stack.resources.get(other)
        if a_res is None:
            continue
        for prop, b_value in (b_res.get("Properties") or {}).items():
            if lid in references(b_value):
                found.append((a_res.get("Properties") or {}).get(prop))
    return found


def _vpc_moves(b_stack: StackTemplate, a_stack: StackTemplate, replaced: dict[str, _Cause],
               volatile: dict[str, _Cause], finding: _MakeFinding) -> list[Finding]:
    """Resources of :data:`VPC_MEMBERS` whose security groups move to another VPC."""
    results = []
    for lid, res in a_stack.resources.items():
        prop = VPC_MEMBERS.get(res["Type"])
        if prop is None or lid not in b_stack.resources or lid in replaced:
            continue
        value = (res.get("Properties") or {}).get(prop)
        causes = [replaced[t] for t in sorted(references(value) & set(replaced))]
        causes += [volatile[name] for name in sorted(imports(value) & set(volatile))]
        moves = [c for c in causes if c.moves_vpc]
        if moves:
            before, after = (list(moves[0].values) + [None, None])[:2]
            results.append(finding(
                DATA_LOSS, a_stack.name, lid, res["Type"],
                f"moves to another VPC (its {prop} are replaced, VpcId {_short(before)} -> {_short(after)}): its "
                "DB subnet group cannot take subnets of another VPC, so only a new instance, which starts empty, "
                "runs there", moves[0].values,
            ))
    return results


def _custom_name_conflict(before: dict, after: dict, region: str) -> str | None:
    """A replaced resource that keeps its literal name: CloudFormation cannot create the new one."""
    schema = type_schema(after.get("Type", ""), region)
    if schema is None or before.get("Type") != after.get("Type"):
        return None
    for path in schema.primary_identifier:
        b_value, a_value = _get(before.get("Properties") or {}, path), _get(after.get("Properties") or {}, path)
        if isinstance(a_value, str) and a_value == b_value:
            return (
                f"replaced but keeps its name {'/'.join(path)}={a_value}: CloudFormation cannot replace a "
                "custom-named resource (the new one is created before the old one is deleted)"
            )
    return None


def _listener_moves(b_stack: StackTemplate, a_stack: StackTemplate, finding: _MakeFinding) -> list[Finding]:
    def listeners(stack: StackTemplate) -> dict[str, str]:
        found = {}
        for lid, res in stack.resources.items():
            if res.get("Type") == "AWS::ElasticLoadBalancingV2::Listener":
                props = res.get("Properties") or {}
                found[_norm([props.get("LoadBalancerArn"), props.get("Port")])] = lid
        return found

    results = []
    after = listeners(a_stack)
    for key, b_lid in listeners(b_stack).items():
        a_lid = after.get(key)
        if a_lid and a_lid != b_lid:
            port = json.loads(key)[1]
            results.append(finding(
                DEPLOY_FAILURE, a_stack.name, a_lid, "AWS::ElasticLoadBalancingV2::Listener",
                f"port {port} moves from listener {b_lid} to a new logical ID: CloudFormation creates the new "
                "listener before deleting the old one and ELBv2 refuses a second listener on a port",
                (b_stack.resources[b_lid].get("Properties"), a_stack.resources[a_lid].get("Properties")),
            ))
    return results


def _scaled_desired_counts(a_stack: StackTemplate, finding: _MakeFinding) -> list[Finding]:
    services = {
        lid: res for lid, res in a_stack.resources.items()
        if res.get("Type") == "AWS::ECS::Service" and "DesiredCount" in (res.get("Properties") or {})
    }
    results = []
    for lid, res in a_stack.resources.items():
        if res.get("Type") != "AWS::ApplicationAutoScaling::ScalableTarget":
            continue
        for service in sorted(references((res.get("Properties") or {}).get("ResourceId")) & set(services)):
            count = services[service]["Properties"]["DesiredCount"]
            results.append(finding(
                WARNING, a_stack.name, service, "AWS::ECS::Service",
                f"DesiredCount {count} on a service that Application Auto Scaling scales ({lid}): every deploy "
                "that updates the service resets its task count", (),
            ))
    return results


def configuration_context(scope) -> dict[str, Any]:
    """The app's configuration keys in ``scope``'s CDK context (plain snake_case keys, as the
    configuration loader reads them; CDK's own ``@aws-cdk/...`` flags and lookups left out), to be
    recorded in each template's metadata under :data:`CONFIGURATION_METADATA_KEY`."""
    context = scope.node.get_all_context()
    return {k: context[k] for k in sorted(context) if re.fullmatch(r"[a-z][a-z0-9_]*", k)}
