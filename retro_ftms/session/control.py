"""What the edge (MQTT, terminal keys) may ask of a running session: stop, pause, resume.

The session runner implements `SessionControl`; the edge only holds this Protocol, so it can never reach
the guard or the client, and can never ask for more speed or incline. Every method is synchronous and
non-blocking: the runner queues the action for its own task, so a caller on a slow path (a broker, a
terminal) can never delay the control loop, and the control loop never waits for the caller.
"""

from __future__ import annotations

from typing import Protocol

from retro_ftms.events import SafetyReason


class SessionControl(Protocol):
    """Requests from outside the control path; the runner decides and acts on its own task."""

    def request_stop(self, reason: SafetyReason) -> None:
        """Stop the belt and latch, as a safety trigger with `reason` would. Always obeyed."""

    def request_pause(self, source: str) -> None:
        """Pause the belt; `source` names who asked (`mqtt`, `terminal`). Always obeyed."""

    def request_resume(self, source: str) -> str | None:
        """Resume after a pause the person asked for.

        Returns None when accepted (queued), otherwise the rule that refuses it, e.g.
        "no resume after a safety stop" or "not paused by the person".
        """
