"""What "hardened" means for a container, shared by the pod rules and the chart-values rule.

One definition, so a pod spec and a chart's values are held to the same bar.
"""

from __future__ import annotations

from typing import Any

from .model import is_unknown

SECCOMP_TYPES = ("RuntimeDefault", "Localhost")


def drops_all_capabilities(drop: Any) -> bool:
    return isinstance(drop, list) and any(not is_unknown(x) and x == "ALL" for x in drop)
