"""The deployment configuration: every key declared once (``settings``, a pydantic model, with
``jobs``, ``schedules``, ``executors`` and ``fargate`` for what its values must be), the loader that
reads the CDK context into it (``loader``), and the typed shape the stacks read (``model``)."""

from app_config.loader import load_config
from app_config.model import (
    BUNDLED_ECS_EXECUTOR,
    STOCK_ECS_EXECUTOR,
    ConfigError,
    DeploymentConfig,
    TaskSize,
)

__all__ = [
    "BUNDLED_ECS_EXECUTOR",
    "STOCK_ECS_EXECUTOR",
    "ConfigError",
    "DeploymentConfig",
    "TaskSize",
    "load_config",
]
