"""Classification of RunTask failures into what the executor should do about them.

Error codes are those of the ECS API reference
(https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html#API_RunTask_Errors,
https://docs.aws.amazon.com/AmazonECS/latest/APIReference/CommonErrors.html) and of the
Fargate capacity messages (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-capacity-providers.html).
"""

from __future__ import annotations

import enum
import re

from botocore.exceptions import (
    ClientError,
    ConnectionError as BotoConnectionError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
)


class SubmitErrorKind(str, enum.Enum):
    """What a RunTask failure means for the Airflow task."""

    #: Will fail again unchanged (permissions, bad parameters, missing task definition): fail now.
    PERMANENT = "permanent"
    #: No capacity right now (Spot or on-demand): retry with backoff, maybe fall back to on-demand.
    CAPACITY = "capacity"
    #: API rate exceeded: retry with jittered backoff; does not use up ``max_run_task_attempts``.
    THROTTLED = "throttled"
    #: A known outage: network, 5xx or credential hiccup. Retried with backoff until the
    #: workload's deadline; does not use up ``max_run_task_attempts``.
    TRANSIENT = "transient"
    #: Anything not recognised (a RunTask failure reason or an exception not listed here):
    #: retried with backoff, counting toward ``max_run_task_attempts`` as in the stock executor.
    UNKNOWN = "unknown"


THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
    }
)

PERMANENT_CODES = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "UnauthorizedOperation",
        "InvalidParameterException",
        "InvalidParameterValue",
        "ValidationException",
        "ClusterNotFoundException",
        "PlatformUnknownException",
        "PlatformTaskDefinitionIncompatibilityException",
        "UnsupportedFeatureException",
        "BlockedException",
        "TargetNotFoundException",
    }
)

#: RunTask ``failures[].reason`` values that mean "try again" (the container instance's agent is
#: disconnected or updating; "API failure reasons" in the ECS developer guide,
#: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/api_failures_messages.html).
TRANSIENT_REASONS = frozenset({"AGENT"})

#: Credential codes that a fresh client (re-read credentials) may cure.
CREDENTIAL_CODES = frozenset(
    {"UnrecognizedClientException", "ExpiredTokenException", "ExpiredToken", "InvalidClientTokenId", "RequestExpired"}
)

TRANSIENT_CODES = frozenset(
    {"ServerException", "ServiceUnavailable", "ServiceUnavailableException", "InternalFailure", "InternalError"}
)

CAPACITY_CODES = frozenset({"LimitExceededException", "InsufficientCapacityException"})

# RunTask "failures[].reason" and ClientException messages that mean "no capacity right now".
_CAPACITY_PATTERN = re.compile(
    r"capacity is unavailable|insufficient capacity|not enough capacity|"
    r"RESOURCE:|no container instances|limit on the number of|reached the limit|"
    r"vcpu limit|try again later|capacity provider .* (?:is )?(?:not|un)available",
    re.IGNORECASE,
)


def is_capacity_reason(reason: str) -> bool:
    """Return True when a RunTask failure reason or error message says capacity is short."""
    return bool(_CAPACITY_PATTERN.search(reason or ""))


def classify_failure_reasons(reasons: list[str]) -> SubmitErrorKind:
    """Classify the ``failures[].reason`` strings of a RunTask response.

    Capacity reasons are retryable; ``MISSING``/``INACTIVE`` (task definition or cluster gone)
    are permanent; :data:`TRANSIENT_REASONS` are transient; anything else is
    :attr:`SubmitErrorKind.UNKNOWN` (retried, counting toward ``max_run_task_attempts``).
    """
    if any(is_capacity_reason(r) for r in reasons):
        return SubmitErrorKind.CAPACITY
    if any(r.strip().upper() in ("MISSING", "INACTIVE") for r in reasons):
        return SubmitErrorKind.PERMANENT
    if reasons and all(r.strip().upper() in TRANSIENT_REASONS for r in reasons):
        return SubmitErrorKind.TRANSIENT
    return SubmitErrorKind.UNKNOWN


def classify_exception(exc: BaseException) -> SubmitErrorKind:
    """Classify an exception raised while building or sending a RunTask request.

    :param exc: any exception; never raises.
    """
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {}) if isinstance(exc.response, dict) else {}
        code = str(error.get("Code", ""))
        message = str(error.get("Message", ""))
        status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") if isinstance(exc.response, dict) else None
        if code in THROTTLING_CODES or status == 429:
            return SubmitErrorKind.THROTTLED
        if code in CAPACITY_CODES:
            return SubmitErrorKind.CAPACITY
        if code in PERMANENT_CODES:
            return SubmitErrorKind.PERMANENT
        if code in CREDENTIAL_CODES or code in TRANSIENT_CODES:
            return SubmitErrorKind.TRANSIENT
        if code == "ClientException":
            # ClientException covers both "task definition does not exist" / "unable to assume
            # role" (permanent) and Fargate quota messages (retryable).
            return SubmitErrorKind.CAPACITY if is_capacity_reason(message) else SubmitErrorKind.PERMANENT
        if isinstance(status, int) and status >= 500:
            return SubmitErrorKind.TRANSIENT
        if isinstance(status, int) and 400 <= status < 500:
            return SubmitErrorKind.PERMANENT
        return SubmitErrorKind.UNKNOWN
    if isinstance(exc, ParamValidationError):
        return SubmitErrorKind.PERMANENT
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError, BotoConnectionError, HTTPClientError)):
        return SubmitErrorKind.TRANSIENT
    if isinstance(exc, NoRegionError):
        return SubmitErrorKind.PERMANENT
    if isinstance(exc, (KeyError, ValueError, TypeError)):
        # Raised while merging executor_config into the RunTask kwargs: a configuration error.
        return SubmitErrorKind.PERMANENT
    return SubmitErrorKind.UNKNOWN


def needs_new_client(exc: BaseException) -> bool:
    """Return True when the failure suggests stale credentials (rebuild the boto3 client)."""
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return True
    if isinstance(exc, ClientError) and isinstance(exc.response, dict):
        return str(exc.response.get("Error", {}).get("Code", "")) in CREDENTIAL_CODES
    return False


def describe_exception(exc: BaseException) -> str:
    """One-line description of an exception for a task event: ``Type: message``."""
    return f"{type(exc).__name__}: {exc}"
