"""cdk.json sets CDK's recommended feature flags for a new app, as `cdk init` writes them."""

from __future__ import annotations

import json

from tests.cdk.conftest import CDK_JSON_CONTEXT, PROJECT_ROOT

#: The flags `cdk init` writes, shipped with the pinned CDK CLI (package.json); the same values
#: as aws-cdk-lib 2.275's CURRENTLY_RECOMMENDED_FLAGS.
RECOMMENDED = PROJECT_ROOT / "node_modules" / "aws-cdk" / "lib" / "init-templates" / ".recommended-feature-flags.json"

#: Deliberate deviations, each with its reason (README "CDK feature flags").
DEVIATIONS = {
    # Recommended "weak" (Fn::GetStackOutput): a producing stack could then be deleted while a
    # consumer still uses it. "strong" keeps CloudFormation from deleting the database, its
    # secrets or the cluster while the Airflow stack refers to them.
    "@aws-cdk/core:defaultCrossStackReferences": "strong",
}


def test_every_recommended_flag_is_set_as_recommended_or_deviates_on_purpose():
    recommended = json.loads(RECOMMENDED.read_text())
    wrong = {
        flag: (CDK_JSON_CONTEXT.get(flag, "<unset>"), value)
        for flag, value in recommended.items()
        if CDK_JSON_CONTEXT.get(flag, "<unset>") != DEVIATIONS.get(flag, value)
    }
    assert not wrong, f"cdk.json value vs recommended: {wrong}"
    assert set(DEVIATIONS) <= set(recommended), "a deviation from a flag that is no longer recommended"
