"""Resolve the CloudFormation intrinsics of a cloud assembly (``cdk.out``) to stand-in values.

The rehearsal runs what the templates say, so it reads them (with :mod:`cloud_assembly`) instead
of restating them: this module gives a :class:`Resolver` that turns ``Ref``, ``Fn::GetAtt``, ``Fn::Sub``,
``Fn::Join``, ``Fn::Select``, ``Fn::Split``, ``Fn::ImportValue``, ``Fn::If`` and the pseudo
parameters into plain values.

Every physical value the rehearsal invents (a bucket name, a role ARN, the database endpoint,
the load balancer's DNS name) comes from ONE table, :class:`StandIns`: a value is either set
there explicitly (by the AWS stand-in after it created the resource, e.g. a secret's ARN that
moto assigns) or derived there, deterministically, from the stack and the logical ID.

Intrinsics reference: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference.html
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from cloud_assembly import AssemblyError, CloudAssembly, StackArtifact
from cloud_assembly.airflow_image import API_SERVER_PORT

#: ``Fn::Sub`` placeholders: ``${Name}``, ``${Logical.Attr}``; ``${!Literal}`` is an escape.
_SUB_PATTERN = re.compile(r"\$\{([^}]*)\}")
#: The tag of a CDK Docker image asset in an ECR image URI.
_ECR_IMAGE = re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?/[^:]+:(?P<tag>[0-9a-f]{64})$")


def _short_hash(*parts: str, length: int = 8) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


@dataclass
class StandIns:
    """The ONE table of stand-in physical values.

    Explicit entries win: ``refs[(stack ID, logical ID)]`` is what ``Ref`` returns and
    ``attributes[(stack ID, logical ID, attribute)]`` what ``Fn::GetAtt`` returns. Anything not
    set is derived from the resource type, stack name and logical ID (deterministic: the same
    assembly gives the same values). ``images`` maps a Docker image asset's tag to the local
    image that stands in for it.

    :param region: AWS region (``AWS::Region``).
    :param account: AWS account ID (``AWS::AccountId``), the placeholder 123456789012.
    :param database_host: where the RDS instance's endpoint points (the local PostgreSQL).
    :param database_port: its port.
    :param load_balancer_dns: what an ALB's ``DNSName`` resolves to, e.g. ``127.0.0.1:8080``:
        the listener stands in as the api-server's own port.
    """

    region: str = "us-east-1"
    account: str = "123456789012"
    partition: str = "aws"
    url_suffix: str = "amazonaws.com"
    database_host: str = "127.0.0.1"
    database_port: int = 5432
    load_balancer_dns: str = f"127.0.0.1:{API_SERVER_PORT}"
    refs: dict[tuple[str, str], str] = field(default_factory=dict)
    attributes: dict[tuple[str, str, str], Any] = field(default_factory=dict)
    images: dict[str, str] = field(default_factory=dict)

    def pseudo(self, name: str, stack: StackArtifact) -> Any:
        """Return a pseudo parameter's value; :raises AssemblyError: for an unknown one."""
        values = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": self.url_suffix,
            "AWS::StackName": stack.stack_name,
            "AWS::StackId": f"arn:{self.partition}:cloudformation:{self.region}:{self.account}:stack/"
            f"{stack.stack_name}/{_short_hash(stack.stack_name, length=12)}",
            "AWS::NoValue": None,
        }
        if name not in values:
            raise AssemblyError(f"unknown pseudo parameter {name} in stack {stack.artifact_id}")
        return values[name]

    def _name(self, stack: StackArtifact, logical_id: str, lower: bool = False, limit: int = 63) -> str:
        base = f"{stack.stack_name}-{logical_id}"[: limit - 9]
        name = f"{base}-{_short_hash(stack.artifact_id, logical_id)}"
        return name.lower() if lower else name

    def arn(self, service: str, resource: str, region: bool = True, account: bool = True) -> str:
        """Return ``arn:<partition>:<service>:<region>:<account>:<resource>``."""
        return (f"arn:{self.partition}:{service}:{self.region if region else ''}:"
                f"{self.account if account else ''}:{resource}")

    def ref(self, stack: StackArtifact, logical_id: str, resource: dict) -> str:
        """Return what ``Ref`` of a resource gives (see the class docstring)."""
        key = (stack.artifact_id, logical_id)
        if key in self.refs:
            return self.refs[key]
        kind = resource.get("Type", "")
        properties = resource.get("Properties", {})
        if kind == "AWS::S3::Bucket":
            value = self._name(stack, logical_id, lower=True)
        elif kind == "AWS::IAM::Role":
            # Ref of a role is its name: RoleName when the template sets one (a team queue's
            # role, which its task definition names by that physical name), else a generated one.
            name = properties.get("RoleName")
            if name is not None and not isinstance(name, str):
                raise AssemblyError(f"{stack.artifact_id}/{logical_id}: RoleName {name!r} is not a plain string; "
                                    "add its resolution to local_ecs.assembly.StandIns.ref")
            value = name or self._name(stack, logical_id, limit=64)
        elif kind == "AWS::SecretsManager::Secret":
            value = self.arn("secretsmanager", f"secret:{self._name(stack, logical_id)}-{_short_hash(logical_id, length=6)}")
        elif kind == "AWS::ECS::Cluster":
            value = self._name(stack, logical_id)
        elif kind == "AWS::ECS::TaskDefinition":
            family = properties.get("Family") or f"{stack.stack_name}{logical_id}"
            value = self.arn("ecs", f"task-definition/{family}:1")
        elif kind == "AWS::Logs::LogGroup":
            value = properties.get("LogGroupName") or self._name(stack, logical_id, limit=512)
        elif kind.startswith("AWS::EC2::"):
            prefix = {"AWS::EC2::Subnet": "subnet", "AWS::EC2::VPC": "vpc", "AWS::EC2::SecurityGroup": "sg"}.get(kind, "id")
            value = f"{prefix}-{_short_hash(stack.artifact_id, logical_id, length=17)}"
        elif kind == "AWS::ServiceDiscovery::PrivateDnsNamespace":
            value = f"ns-{_short_hash(stack.artifact_id, logical_id, length=16)}"
        elif kind == "AWS::ServiceDiscovery::Service":
            value = f"srv-{_short_hash(stack.artifact_id, logical_id, length=16)}"
        elif kind == "AWS::KMS::Key":
            value = f"{_short_hash(stack.artifact_id, logical_id, length=8)}-0000-4000-8000-{_short_hash(logical_id, length=12)}"
        elif kind == "AWS::RDS::DBInstance":
            value = self._name(stack, logical_id, lower=True)
        else:
            value = self._name(stack, logical_id)
        self.refs[key] = value
        return value

    def get_att(self, stack: StackArtifact, logical_id: str, resource: dict, attribute: str) -> Any:
        """Return what ``Fn::GetAtt`` gives.

        :raises AssemblyError: for an attribute this table does not know (add it here).
        """
        key = (stack.artifact_id, logical_id, attribute)
        if key in self.attributes:
            return self.attributes[key]
        kind = resource.get("Type", "")
        ref = self.ref(stack, logical_id, resource)
        by_type = {
            ("AWS::IAM::Role", "Arn"): lambda: self.arn("iam", f"role/{ref}", region=False),
            ("AWS::IAM::Role", "RoleId"): lambda: f"AROA{_short_hash(ref, length=16).upper()}",
            ("AWS::S3::Bucket", "Arn"): lambda: f"arn:{self.partition}:s3:::{ref}",
            ("AWS::S3::Bucket", "DomainName"): lambda: f"{ref}.s3.{self.url_suffix}",
            ("AWS::S3::Bucket", "RegionalDomainName"): lambda: f"{ref}.s3.{self.region}.{self.url_suffix}",
            ("AWS::ECS::Cluster", "Arn"): lambda: self.arn("ecs", f"cluster/{ref}"),
            # Ref of a service is its ARN; Name is ServiceName, or the name CloudFormation generates.
            ("AWS::ECS::Service", "Name"): lambda: (resource.get("Properties", {}).get("ServiceName")
                                                    or self._name(stack, logical_id)),
            ("AWS::Logs::LogGroup", "Arn"): lambda: self.arn("logs", f"log-group:{ref}:*"),
            ("AWS::KMS::Key", "Arn"): lambda: self.arn("kms", f"key/{ref}"),
            ("AWS::EC2::SecurityGroup", "GroupId"): lambda: ref,
            ("AWS::EC2::VPC", "CidrBlock"): lambda: "10.0.0.0/16",
            ("AWS::EC2::VPC", "DefaultSecurityGroup"): lambda: f"sg-{_short_hash(ref, length=17)}",
            ("AWS::ServiceDiscovery::PrivateDnsNamespace", "Id"): lambda: ref,
            ("AWS::ServiceDiscovery::PrivateDnsNamespace", "Arn"): lambda: self.arn("servicediscovery", f"namespace/{ref}"),
            ("AWS::ServiceDiscovery::Service", "Arn"): lambda: self.arn("servicediscovery", f"service/{ref}"),
            ("AWS::ServiceDiscovery::Service", "Name"): lambda: resource.get("Properties", {}).get("Name"),
            ("AWS::RDS::DBInstance", "Endpoint.Address"): lambda: self.database_host,
            ("AWS::RDS::DBInstance", "Endpoint.Port"): lambda: str(self.database_port),
            ("AWS::ElasticLoadBalancingV2::LoadBalancer", "DNSName"): lambda: self.load_balancer_dns,
            ("AWS::ECS::TaskDefinition", "TaskDefinitionArn"): lambda: ref,
        }
        if (kind, attribute) not in by_type:
            raise AssemblyError(
                f"no stand-in for Fn::GetAtt {logical_id}.{attribute} ({kind}) in stack {stack.artifact_id}: "
                "add it to local_ecs.assembly.StandIns.get_att"
            )
        value = by_type[(kind, attribute)]()
        self.attributes[key] = value
        return value

    def image(self, uri: str) -> str:
        """Return the local image standing in for an image URI of a template: a CDK image
        asset's ECR URI maps through ``images`` (by its tag); anything else is returned as is."""
        match = _ECR_IMAGE.match(uri)
        if match and match.group("tag") in self.images:
            return self.images[match.group("tag")]
        return uri


class Resolver:
    """Resolve intrinsic functions in template values of ``assembly`` against ``stand_ins``.

    :param assembly: the cloud assembly.
    :param stand_ins: the table of physical values.
    """

    def __init__(self, assembly: CloudAssembly, stand_ins: StandIns):
        self.assembly = assembly
        self.stand_ins = stand_ins
        self._exports = assembly.exports()

    def resolve(self, stack_id: str, value: Any) -> Any:
        """Return ``value`` with every intrinsic resolved; ``AWS::NoValue`` entries are dropped.

        :raises AssemblyError: for an unknown logical ID, export, attribute or function.
        """
        stack = self.assembly.stack(stack_id)
        return self._resolve(stack, value)

    def resource(self, stack_id: str, logical_id: str) -> dict:
        """Return the raw resource ``logical_id`` of ``stack_id``."""
        stack = self.assembly.stack(stack_id)
        try:
            return stack.resources[logical_id]
        except KeyError:
            raise AssemblyError(f"no resource {logical_id} in stack {stack_id}") from None

    def properties(self, stack_id: str, logical_id: str) -> dict:
        """Return the resolved ``Properties`` of a resource."""
        return self.resolve(stack_id, self.resource(stack_id, logical_id).get("Properties", {}))

    # -- internals ----------------------------------------------------------------------------

    def _ref(self, stack: StackArtifact, name: str) -> Any:
        if name.startswith("AWS::"):
            return self.stand_ins.pseudo(name, stack)
        if name in stack.template.get("Parameters", {}):
            parameter = stack.template["Parameters"][name]
            if "Default" not in parameter:
                raise AssemblyError(f"parameter {name} of stack {stack.artifact_id} has no default")
            return parameter["Default"]
        if name not in stack.resources:
            raise AssemblyError(f"Ref to unknown logical ID {name} in stack {stack.artifact_id}")
        resource = stack.resources[name]
        if (resource.get("Type") == "AWS::SecretsManager::SecretTargetAttachment"
                and (stack.artifact_id, name) not in self.stand_ins.refs):
            # Ref of an attachment is the ARN of the secret it attaches to.
            return self._resolve(stack, resource["Properties"]["SecretId"])
        return self.stand_ins.ref(stack, name, resource)

    def _get_att(self, stack: StackArtifact, logical_id: str, attribute: str) -> Any:
        if logical_id not in stack.resources:
            raise AssemblyError(f"Fn::GetAtt of unknown logical ID {logical_id} in stack {stack.artifact_id}")
        return self.stand_ins.get_att(stack, logical_id, stack.resources[logical_id], attribute)

    def _condition(self, stack: StackArtifact, name: str) -> bool:
        conditions = stack.template.get("Conditions", {})
        if name not in conditions:
            raise AssemblyError(f"unknown condition {name} in stack {stack.artifact_id}")
        return bool(self._resolve(stack, conditions[name]))

    def _resolve(self, stack: StackArtifact, value: Any) -> Any:
        if isinstance(value, list):
            items = [self._resolve(stack, item) for item in value]
            return [item for item in items if item is not None]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self._ref(stack, arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self._get_att(stack, logical_id, self._resolve(stack, attribute))
            if key == "Fn::Join":
                separator, parts = arg
                return separator.join(str(part) for part in self._resolve(stack, parts))
            if key == "Fn::Select":
                index, items = self._resolve(stack, arg)
                return items[int(index)]
            if key == "Fn::Split":
                separator, text = self._resolve(stack, arg)
                return text.split(separator)
            if key == "Fn::Sub":
                return self._sub(stack, arg)
            if key == "Fn::ImportValue":
                return self._import(self._resolve(stack, arg), stack)
            if key == "Fn::GetAZs":
                return [f"{self.stand_ins.region}{suffix}" for suffix in "abc"]
            if key == "Fn::If":
                name, when_true, when_false = arg
                return self._resolve(stack, when_true if self._condition(stack, name) else when_false)
            if key == "Fn::Equals":
                left, right = self._resolve(stack, arg)
                return left == right
            if key == "Fn::Not":
                return not self._resolve(stack, arg[0])
            if key == "Fn::And":
                return all(self._resolve(stack, item) for item in arg)
            if key == "Fn::Or":
                return any(self._resolve(stack, item) for item in arg)
            if key == "Condition":
                return self._condition(stack, arg)
            if key == "Fn::FindInMap":
                mapping, top, second = self._resolve(stack, arg)
                return stack.template["Mappings"][mapping][top][second]
            if key.startswith("Fn::"):
                raise AssemblyError(f"intrinsic {key} is not supported (stack {stack.artifact_id})")
        resolved = {k: self._resolve(stack, v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not None}

    def _sub(self, stack: StackArtifact, arg: Any) -> str:
        template, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self._resolve(stack, arg[1]))

        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return str(self._get_att(stack, logical_id, attribute))
            return str(self._ref(stack, name))

        return _SUB_PATTERN.sub(replace, template)

    def _import(self, name: str, importer: StackArtifact) -> Any:
        if name not in self._exports:
            # Export names may be expressions (e.g. with AWS::StackName): resolve them once.
            for stack in self.assembly.stacks.values():
                for output in stack.template.get("Outputs", {}).values():
                    export = (output.get("Export") or {}).get("Name")
                    if export is not None and not isinstance(export, str):
                        self._exports[self._resolve(stack, export)] = (stack.artifact_id, output["Value"])
        if name not in self._exports:
            raise AssemblyError(f"Fn::ImportValue {name!r} in stack {importer.artifact_id}: no stack exports it")
        stack_id, value = self._exports[name]
        return self._resolve(self.assembly.stack(stack_id), value)
