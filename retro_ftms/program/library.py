"""Finding programs: the built-in ones shipped as package data, and program files given by path."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Final

from retro_ftms.errors import ProgramError
from retro_ftms.program.model import NOT_SET, Program, Units

_BUILTIN_PACKAGE: Final = "retro_ftms.program"
_BUILTIN_DIR: Final = "builtin"
_SUFFIX: Final = ".toml"


@dataclass(frozen=True, slots=True)
class ProgramInfo:
    """What `retro-ftms programs list` shows about a built-in program."""

    name: str
    title: str
    description: str
    units: Units
    duration_s: float
    step_count: int
    sources: tuple[str, ...]


def _builtin_files() -> dict[str, Traversable]:
    folder = resources.files(_BUILTIN_PACKAGE).joinpath(_BUILTIN_DIR)
    return {
        entry.name.removesuffix(_SUFFIX): entry
        for entry in folder.iterdir()
        if entry.is_file() and entry.name.endswith(_SUFFIX)
    }


def builtin_names() -> list[str]:
    return sorted(_builtin_files())


def _load_builtin(name: str, entry: Traversable) -> Program:
    source = f"builtin:{name}"
    program = Program.from_toml(entry.read_text(encoding="utf-8"), source=source)
    if program.name != name:
        raise ProgramError(source, "key 'name'", program.name, f"a built-in program's name must be {name!r}")
    return program


def list_builtin() -> list[ProgramInfo]:
    """Every built-in program, by name."""
    infos = []
    for name, entry in sorted(_builtin_files().items()):
        program = _load_builtin(name, entry)
        infos.append(
            ProgramInfo(
                name=program.name,
                title=program.title,
                description=program.description,
                units=program.units,
                duration_s=program.duration_s,
                step_count=len(program.steps),
                sources=program.sources,
            )
        )
    return infos


def load_program(path_or_name: str | os.PathLike[str]) -> Program:
    """A built-in program by name (`first-steps`), or a program file by path (`my.toml`, `./x`).

    Anything that looks like a path (a separator or a `.toml` suffix) is read as a file; a bare name is a
    built-in program first, then a file of that name. Raises `ProgramError` naming the file, the step and
    the rule.
    """
    text = os.fspath(path_or_name)
    looks_like_path = (
        not isinstance(path_or_name, str) or text.endswith(_SUFFIX) or os.sep in text or "/" in text
    )
    if looks_like_path:
        return load_program_file(Path(text))
    builtins = _builtin_files()
    if text in builtins:
        return _load_builtin(text, builtins[text])
    if Path(text).is_file():
        return load_program_file(Path(text))
    known = ", ".join(sorted(builtins))
    raise ProgramError(
        text, "program", NOT_SET, f"no built-in program of that name and no such file (built-in: {known})"
    )


def load_program_file(path: Path) -> Program:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ProgramError(source, "file", NOT_SET, "no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ProgramError(source, "file", NOT_SET, f"cannot read the file: {exc}") from exc
    return Program.from_toml(text, source=source)


def source_text(program: Program) -> str:
    """The text `program` was loaded from (its file, or the built-in's), to fingerprint what ran.

    A program built in memory (no file behind it), or a file that is gone since, gives its JSON.
    """
    source = program.source
    builtins = _builtin_files()
    if source.startswith("builtin:") and source.removeprefix("builtin:") in builtins:
        return builtins[source.removeprefix("builtin:")].read_text(encoding="utf-8")
    try:
        return Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return program.model_dump_json()
