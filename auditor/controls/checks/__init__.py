"""The registered checks, one module per control family.

Importing this package registers every check in ``REGISTRY`` (name -> ``CheckSpec``).
"""

from auditor.controls.checks import (  # noqa: F401 (imported to register the checks)
    access,
    change,
    credential,
    integrations,
    inventory,
    pull_requests,
    rotation,
)
from auditor.controls.checks.registry import (
    LEVELS,
    REGISTRY,
    REPOSITORY_LEVELS,
    ROW_COLUMNS,
    CheckContext,
    CheckSpec,
    NoParameters,
    Parameters,
    Rows,
    check,
)

__all__ = [
    "LEVELS",
    "REGISTRY",
    "REPOSITORY_LEVELS",
    "ROW_COLUMNS",
    "CheckContext",
    "CheckSpec",
    "NoParameters",
    "Parameters",
    "Rows",
    "check",
]
