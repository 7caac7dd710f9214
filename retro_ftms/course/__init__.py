"""Courses: a person's sessions from week to week, and the rules that decide the next one.

Pure like `retro_ftms.program`: no I/O beyond reading a course file, no asyncio. The file format is
documented in `retro_ftms.course.model`, the rules of progression in `retro_ftms.course.progress`.
"""

from retro_ftms.course.library import builtin_names, load_course, load_course_file
from retro_ftms.course.model import Course, Level
from retro_ftms.course.past import PastSession
from retro_ftms.course.plan import check_course, level_errors, level_program
from retro_ftms.course.progress import Decision, DecisionKind, decide, judge, rest_warning

__all__ = [
    "Course",
    "Decision",
    "DecisionKind",
    "Level",
    "PastSession",
    "builtin_names",
    "check_course",
    "decide",
    "judge",
    "level_errors",
    "level_program",
    "load_course",
    "load_course_file",
    "rest_warning",
]
