"""The peak resident memory of this process (the benches' children report their own)."""

from __future__ import annotations

import resource


def peak_mb() -> float:
    """Return this process's peak RSS in MB: Linux's VmHWM, which a child starts afresh
    (ru_maxrss carries the parent's peak across fork and exec), else ru_maxrss."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
