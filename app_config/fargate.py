"""Fargate's accepted task sizes.

Source: "Task CPU and memory" in the Amazon ECS developer guide,
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size
(Linux platform version 1.4.0). CPU is in vCPU units (1024 = 1 vCPU); memory in MiB.
"""

from __future__ import annotations

# cpu (vCPU units) -> (lowest MiB, highest MiB, step MiB)
_MEMORY_RANGES: dict[int, tuple[int, int, int]] = {
    256: (512, 2048, 512),  # 512, 1024, 2048 are listed; 1536 is not accepted
    512: (1024, 4096, 1024),
    1024: (2048, 8192, 1024),
    2048: (4096, 16384, 1024),
    4096: (8192, 30720, 1024),
    8192: (16384, 61440, 4096),
    16384: (32768, 122880, 8192),
}


def valid_memory_values(cpu: int) -> list[int]:
    """Return the memory sizes (MiB) that Fargate accepts with ``cpu`` vCPU units.

    Returns an empty list when ``cpu`` is not one of Fargate's CPU sizes.
    """
    if cpu not in _MEMORY_RANGES:
        return []
    if cpu == 256:
        return [512, 1024, 2048]
    low, high, step = _MEMORY_RANGES[cpu]
    return list(range(low, high + 1, step))


def valid_cpu_values() -> list[int]:
    """Return Fargate's CPU sizes in vCPU units, smallest first."""
    return sorted(_MEMORY_RANGES)


def fargate_size_error(cpu: int, memory_mib: int) -> str | None:
    """Describe why ``cpu``/``memory_mib`` is not a Fargate task size, or return None if it is.

    :param cpu: task CPU in vCPU units (1024 = 1 vCPU).
    :param memory_mib: task memory in MiB.
    :returns: a sentence naming the accepted values, or None when the pair is valid.
    """
    if cpu not in _MEMORY_RANGES:
        return f"cpu={cpu} is not a Fargate CPU size; use one of {valid_cpu_values()} (vCPU units)"
    allowed = valid_memory_values(cpu)
    if memory_mib not in allowed:
        low, high, step = _MEMORY_RANGES[cpu]
        if cpu == 256:
            hint = "512, 1024 or 2048"
        else:
            hint = f"{low} to {high} in steps of {step}"
        return f"memory={memory_mib} MiB is not accepted with cpu={cpu}; use {hint} MiB"
    return None
