"""`retro-ftms` and `python -m retro_ftms`: the entry point, kept tiny so that signals are handled early.

The stop signals get their handlers before anything heavy is imported: a SIGTERM, SIGHUP or Ctrl-C
during start-up exits 130 with one line, never 143 or a KeyboardInterrupt traceback.
"""

import contextlib
import sys


def main() -> None:
    """Install the early signal handlers, then run the command line."""
    from retro_ftms.edge.signals import EXIT_INTERRUPTED, Interrupted, install_early_handlers  # noqa: PLC0415

    install_early_handlers()
    try:
        from retro_ftms.edge.cli import main as cli_main  # noqa: PLC0415  (after the handlers)

        cli_main()
    except (KeyboardInterrupt, Interrupted):
        _say("retro-ftms: interrupted")
        sys.exit(EXIT_INTERRUPTED)


def _say(line: str) -> None:
    """One line on stderr, if there is still a terminal to write to."""
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"{line}\n")
        sys.stderr.flush()


if __name__ == "__main__":
    main()
