"""The change check: what a deploy of new templates does to the stacks that are deployed.

It compares the before-templates (a cloud assembly, or the templates CloudFormation returns for
the deployed ``<project>-<stage>-*`` stacks) with the after-templates (a cloud assembly,
``cdk.out``) and reports, per stack, what would hurt:

- **data loss**: a stateful resource (:data:`changes.check.STATEFUL_TYPES`) replaced or removed;
- **deploy failure**: an export removed (or its value changed) while another deployed stack
  imports it; a listener port served by a new logical ID; a custom-named resource replaced;
- **warning**: a ``DesiredCount`` on a service that Application Auto Scaling scales.

Replacements come from the CloudFormation registry schemas that cfn-lint ships
(``createOnlyProperties``), see :mod:`changes.schemas`. Entry point: ``python -m changes``.
"""

from changes.check import Finding, Report, StackTemplates, compare

__all__ = ["Finding", "Report", "StackTemplates", "compare"]
