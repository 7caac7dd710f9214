"""Backward-walking programs as data: load, check against the safety rules, expand into timed targets.

The file format is documented in `retro_ftms.program.model`.
"""

from retro_ftms.program.library import (
    ProgramInfo,
    builtin_names,
    list_builtin,
    load_program,
    load_program_file,
)
from retro_ftms.program.model import (
    MPH_LIMIT_SLACK,
    MPH_TO_KMH,
    NOT_SET,
    Program,
    Quantity,
    Shown,
    Step,
    StepKind,
    Units,
)
from retro_ftms.program.plan import Segment, check_program, expand

__all__ = [
    "MPH_LIMIT_SLACK",
    "MPH_TO_KMH",
    "NOT_SET",
    "Program",
    "ProgramInfo",
    "Quantity",
    "Segment",
    "Shown",
    "Step",
    "StepKind",
    "Units",
    "builtin_names",
    "check_program",
    "expand",
    "list_builtin",
    "load_program",
    "load_program_file",
]
