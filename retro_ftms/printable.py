"""Text from outside the program (device names, MQTT payloads) made safe to show, log and publish.

A nearby BLE device chooses its own name, and anyone on the broker chooses a command payload: printed raw,
an escape sequence in either can clear the terminal, rewrite what it shows, or (bidi overrides) make a
name read differently from what it is. `printable` drops all of that and keeps ordinary text.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

# Whole escape sequences first, so "\x1b[2J" leaves nothing behind rather than a stray "[2J":
# CSI (ESC [ or U+009B, parameters, intermediates, a final byte), OSC/DCS/SOS/PM/APC strings (ESC ] ... up
# to BEL or ST, unterminated ones to the end), and two-character escapes (ESC and one byte).
_ESCAPE_SEQUENCE: Final = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -~]?"
)
# Unicode categories that never belong in a name: controls (C0, DEL, C1), format characters (bidi
# embeddings, overrides and isolates, zero-width characters), line and paragraph separators, surrogates
# and private-use characters.
_DROPPED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co"})


def printable(text: str) -> str:
    """`text` without escape sequences and control, format or separator characters (see the module)."""
    if text.isascii() and text.isprintable():
        return text  # the usual case, and the cheapest
    without_sequences = _ESCAPE_SEQUENCE.sub("", text)
    return "".join(c for c in without_sequences if unicodedata.category(c) not in _DROPPED_CATEGORIES)


def printable_or_none(text: str | None) -> str | None:
    """`printable(text)`, None for None; a name that was nothing but control characters is None too."""
    if text is None:
        return None
    return printable(text) or None
