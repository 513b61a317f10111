"""cdk-nag AwsSolutions findings that are acknowledged rather than fixed, each on the narrowest
construct, with the reason a reviewer needs. README "Security" lists them all."""

from __future__ import annotations

import aws_cdk as cdk


def acknowledge_findings(stacks: dict[str, cdk.Stack]) -> None:
    """Acknowledge the accepted findings on the constructs of ``stacks`` (keys as returned by
    ``app.build_app``)."""
