"""Reusable constructs: each owns the resources of one concern. Stacks in ``stacks/`` compose them."""
