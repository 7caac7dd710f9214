"""Export and report tests: pure ones over sessions built by hand, and ones over a session run through the
real stack and recorded by the history store (a thin layer over `tests.harness`)."""

from __future__ import annotations

from tests import harness

_no_config_from_the_environment = harness.no_config_from_the_environment
