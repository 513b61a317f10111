"""Fargate's accepted task sizes, as the CDK app's configuration checks them.

The table itself has one home, :data:`airflow_ecs_fargate.fargate_sizes.FARGATE_SIZES` (the
bundled executor's dependency-free module, which the CDK app may import; the executor never
imports the CDK app). CPU is in vCPU units (1024 = 1 vCPU); memory in MiB.
"""

from __future__ import annotations

from airflow_ecs_fargate.fargate_sizes import FARGATE_SIZES


def valid_memory_values(cpu: int) -> list[int]:
    """Return the memory sizes (MiB) that Fargate accepts with ``cpu`` vCPU units.

    Returns an empty list when ``cpu`` is not one of Fargate's CPU sizes.
    """
    return list(FARGATE_SIZES.get(cpu, ()))


def valid_cpu_values() -> list[int]:
    """Return Fargate's CPU sizes in vCPU units, smallest first."""
    return sorted(FARGATE_SIZES)


def fargate_size_error(cpu: int, memory_mib: int) -> str | None:
    """Describe why ``cpu``/``memory_mib`` is not a Fargate task size, or return None if it is.

    :param cpu: task CPU in vCPU units (1024 = 1 vCPU).
    :param memory_mib: task memory in MiB.
    :returns: a sentence naming the accepted values, or None when the pair is valid.
    """
    if cpu not in FARGATE_SIZES:
        return f"cpu={cpu} is not a Fargate CPU size; use one of {valid_cpu_values()} (vCPU units)"
    allowed = FARGATE_SIZES[cpu]
    if memory_mib in allowed:
        return None
    steps = {b - a for a, b in zip(allowed, allowed[1:])}
    if len(steps) == 1 and len(allowed) > 3:
        hint = f"{allowed[0]} to {allowed[-1]} in steps of {steps.pop()}"
    else:
        hint = ", ".join(map(str, allowed[:-1])) + f" or {allowed[-1]}"
    return f"memory={memory_mib} MiB is not accepted with cpu={cpu}; use {hint} MiB"
