"""Fargate's accepted task sizes, for validating per-task and per-queue cpu/memory overrides.

Source: "Task CPU and memory" in the Amazon ECS developer guide,
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size
(Linux, platform version 1.4.0). CPU is in vCPU units (1024 = 1 vCPU), memory in MiB.

This module is the table's one home and imports nothing: the executor checks per-task and
per-queue overrides with it, and the CDK app's configuration (``app_config/fargate.py``) reads it.
"""

from __future__ import annotations

# cpu (vCPU units) -> accepted memory sizes (MiB)
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}


def size_error(cpu: object, memory: object) -> str | None:
    """Say why ``cpu``/``memory`` is not a Fargate task size, or return None when it is one.

    :param cpu: vCPU units as int or numeric string (RunTask takes strings), or None when unset.
    :param memory: MiB as int or numeric string, or None when unset.
    :return: a sentence naming the accepted values, or None.

    With only one of the two set, the other is the task definition's: only the given value is
    checked against the table's cpu sizes / all memory sizes.
    """
    try:
        cpu_units = None if cpu is None else int(str(cpu))
        memory_mib = None if memory is None else int(str(memory))
    except ValueError:
        return f"cpu={cpu!r} / memory={memory!r} must be whole numbers (vCPU units / MiB), e.g. cpu='1024', memory='2048'"
    if cpu_units is not None and cpu_units not in FARGATE_SIZES:
        return f"cpu={cpu_units} is not a Fargate CPU size; use one of {sorted(FARGATE_SIZES)} (vCPU units)"
    if memory_mib is None:
        return None
    if cpu_units is None:
        if any(memory_mib in sizes for sizes in FARGATE_SIZES.values()):
            return None
        return f"memory={memory_mib} MiB is not a Fargate memory size with any CPU size"
    if memory_mib not in FARGATE_SIZES[cpu_units]:
        sizes = FARGATE_SIZES[cpu_units]
        return (
            f"memory={memory_mib} MiB is not accepted with cpu={cpu_units}; use one of "
            f"{sizes[0]}..{sizes[-1]} MiB ({', '.join(map(str, sizes[:4]))}{', ...' if len(sizes) > 4 else ''})"
        )
    return None
