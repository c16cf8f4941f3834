"""What machine a benchmark ran on, and pinning to one core."""

from __future__ import annotations

import os
import platform


def pin_to_one_core() -> bool:
    """Run this process on one CPU (the 'one core' of the targets); False if not possible."""
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
        return True
    except (AttributeError, OSError):
        return False


def describe_machine(pinned: bool) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for mod in ("numpy", "numba", "scipy", "pylsl", "zmq", "onnxruntime"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - optional modules
            pass
    import rtclass

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "pinned_to_one_core": pinned,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "rtclass": rtclass.__version__,
        "versions": versions,
    }
