"""Finding courses: the built-in ones shipped as package data, and course files given by path."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Final

from retro_ftms.course.model import Course
from retro_ftms.errors import CourseError
from retro_ftms.program.model import NOT_SET

_BUILTIN_PACKAGE: Final = "retro_ftms.course"
_BUILTIN_DIR: Final = "builtin"
_SUFFIX: Final = ".toml"


def builtin_names() -> list[str]:
    folder = resources.files(_BUILTIN_PACKAGE).joinpath(_BUILTIN_DIR)
    return sorted(
        entry.name.removesuffix(_SUFFIX)
        for entry in folder.iterdir()
        if entry.is_file() and entry.name.endswith(_SUFFIX)
    )


def _load_builtin(name: str) -> Course:
    source = f"builtin:{name}"
    entry = resources.files(_BUILTIN_PACKAGE).joinpath(_BUILTIN_DIR, name + _SUFFIX)
    course = Course.from_toml(entry.read_text(encoding="utf-8"), source=source)
    if course.name != name:
        raise CourseError(source, "key 'name'", course.name, f"a built-in course's name must be {name!r}")
    return course


def load_course(path_or_name: str | os.PathLike[str]) -> Course:
    """A built-in course by name (`knee-six-weeks`), or a course file by path.

    As for programs: anything that looks like a path (a separator or a `.toml` suffix) is read as a file;
    a bare name is a built-in course first, then a file of that name.
    """
    text = os.fspath(path_or_name)
    if not isinstance(path_or_name, str) or text.endswith(_SUFFIX) or os.sep in text or "/" in text:
        return load_course_file(Path(text))
    if text in builtin_names():
        return _load_builtin(text)
    if Path(text).is_file():
        return load_course_file(Path(text))
    known = ", ".join(builtin_names())
    raise CourseError(
        text, "course", NOT_SET, f"no built-in course of that name and no such file (built-in: {known})"
    )


def read_course_text(path: Path) -> str:
    """A course file's text; `CourseError` naming the file when it cannot be read."""
    source = str(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise CourseError(source, "file", NOT_SET, "no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise CourseError(source, "file", NOT_SET, f"cannot read the file: {exc}") from exc


def load_course_file(path: Path) -> Course:
    return Course.from_toml(read_course_text(path), source=str(path))
