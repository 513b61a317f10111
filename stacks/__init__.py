"""CloudFormation stacks: each composes constructs from ``constructs_lib`` and receives what it
needs from the others as typed arguments, so CDK makes the cross-stack references."""
