"""The check-in questions: knee pain before and after a session, and the next morning.

The pain-monitoring model (programs.md, "Progression from session to session") rates pain on the 0-10
numeric scale: up to 5 during exercise is acceptable, and it must settle by the next morning. The answers
decide whether a course progresses, so an unknown answer stays unknown (None) and is never guessed:
`--yes` without the answers on the command line records them as unknown, and an empty answer (Enter)
skips a question.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TextIO, cast

from rich.prompt import InvalidResponse, PromptBase
from rich.text import Text

from retro_ftms.edge.keys import is_terminal, stdin_fd
from retro_ftms.edge.preflight import NO_ANSWERS, YES_ANSWERS, PreflightCancelled, TerminalLines
from retro_ftms.edge.preflight import _interruptible as interruptible
from retro_ftms.events import CheckinEvent
from retro_ftms.history.store import PAIN_MAX, PAIN_MIN

if TYPE_CHECKING:
    from rich.console import Console

PAIN_NOW: Final = "Knee pain right now (0-10)?"
MORNING_PAIN: Final = (
    "This morning, was the knee back to how it was before the last session? Pain this morning (0-10)?"
)
WORST_PAIN: Final = "Worst knee pain during the session (0-10)?"
COULD_TALK: Final = "Could you talk the whole time? (y/n)"
SKIP_HINT: Final = "Pain on a 0-10 scale (0 none, 10 the worst imaginable); Enter skips a question."
PAIN_STOP_HINT: Final = (
    "If the knee hurts sharply during the session, press ! : the belt stops (reason pain)."
)


@dataclass(frozen=True, slots=True)
class CheckinAnswers:
    """Answers given on the command line (`--pain-before`, `--pain-after`, `--worst-pain`, `--talk`);
    None: not given, so asked at the terminal (or unknown with `--yes`)."""

    pain_before: int | None = None
    pain_after: int | None = None
    worst_pain: int | None = None
    talk: bool | None = None


class _OptionalPrompt(PromptBase[int | bool | None]):
    """A question whose empty answer is None (skipped); subclasses parse the rest."""

    prompt_suffix = " "  # the questions end in "?" already

    def process_response(self, value: str) -> int | bool | None:
        answer = value.strip().lower()
        if not answer:
            return None
        return self.parse(answer)

    def parse(self, answer: str) -> int | bool:
        raise NotImplementedError


class PainPrompt(_OptionalPrompt):
    """A whole number from 0 to 10."""

    validate_error_message = f"[prompt.invalid]Please answer a whole number from {PAIN_MIN} to {PAIN_MAX}"

    def parse(self, answer: str) -> int:
        if not (answer.isascii() and answer.isdigit()) or not PAIN_MIN <= int(answer) <= PAIN_MAX:
            raise InvalidResponse(self.validate_error_message)
        return int(answer)


class YesNoPrompt(_OptionalPrompt):
    """y, yes, n or no, in any case."""

    validate_error_message = "[prompt.invalid]Please answer y or n"

    def parse(self, answer: str) -> bool:
        if answer in YES_ANSWERS:
            return True
        if answer in NO_ANSWERS:
            return False
        raise InvalidResponse(self.validate_error_message)


class CheckinQuestions:
    """Asks what the command line did not answer, on `stream` (default: stdin when it is a terminal).

    Without anyone to ask (`--yes`, or no terminal any more) the unanswered questions stay unknown.
    The questions before the session are asked in a worker thread, like the pre-flight: setting
    `cancelled` (a stop signal) abandons them.
    """

    def __init__(
        self,
        console: Console,
        answers: CheckinAnswers,
        *,
        assume_yes: bool,
        stream: TextIO | None = None,
        cancelled: threading.Event | None = None,
    ) -> None:
        self._console = console
        self._answers = answers
        self._assume_yes = assume_yes
        self._stream = stream
        self._cancelled = cancelled

    def _input(self) -> TextIO | None:
        if self._assume_yes:
            return None
        if self._stream is not None:
            return self._stream
        fd = stdin_fd()
        if fd is None or not is_terminal(fd):
            return None
        return cast(TextIO, TerminalLines(fd, self._cancelled))

    def _ask(self, prompt: type[_OptionalPrompt], question: str, stream: TextIO | None) -> int | bool | None:
        if stream is None:
            return None
        try:
            return prompt.ask(question, console=self._console, stream=stream)
        except EOFError:
            return None
        except PreflightCancelled:  # the run ends (a stop signal): nobody waits for the answer
            self._console.print()
            return None

    def before(self, *, ask_morning: bool) -> tuple[CheckinEvent, ...]:
        """The `morning` check-in for the last session (when `ask_morning`) and the `before` one.

        The morning answer is only ever asked: with `--yes` it stays missing, to be given later with
        `retro-ftms checkin --morning`. Ctrl-C at a question raises KeyboardInterrupt (nothing moved).
        """
        stream = self._input()
        events: list[CheckinEvent] = []
        with interruptible():
            if stream is not None:
                self._console.print(Text(SKIP_HINT, style="dim"))
            if ask_morning and stream is not None:
                events.append(
                    CheckinEvent("morning", pain=_pain(self._ask(PainPrompt, MORNING_PAIN, stream)))
                )
            pain = self._answers.pain_before
            if pain is None:
                pain = _pain(self._ask(PainPrompt, PAIN_NOW, stream))
        self._console.print(Text(PAIN_STOP_HINT, style="bold"))
        events.append(CheckinEvent("before", pain=pain))
        return tuple(events)

    def after(self) -> CheckinEvent:
        """The `after` check-in: pain now, worst pain during, could talk. Ctrl-C leaves the rest unknown."""
        given = self._answers
        stream = self._input()
        pain, worst, talk = given.pain_after, given.worst_pain, given.talk
        try:
            with interruptible():
                if pain is None:
                    pain = _pain(self._ask(PainPrompt, PAIN_NOW, stream))
                if worst is None:
                    worst = _pain(self._ask(PainPrompt, WORST_PAIN, stream))
                if talk is None:
                    answer = self._ask(YesNoPrompt, COULD_TALK, stream)
                    talk = answer if isinstance(answer, bool) else None
        except KeyboardInterrupt:
            self._console.print()
        return CheckinEvent("after", pain=pain, worst_pain=worst, talk=talk)


def _pain(answer: int | bool | None) -> int | None:
    return answer if isinstance(answer, int) and not isinstance(answer, bool) else None
