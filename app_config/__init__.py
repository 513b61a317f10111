"""The deployment configuration: a typed model (``model``), Fargate's size rules (``fargate``) and
the loader that builds and validates it from the CDK context (``loader``)."""

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
