"""Course tests: the pure rules, and whole courses through the real stack (a thin layer over
`tests.harness`)."""

from __future__ import annotations

from tests import harness

_no_config_from_the_environment = harness.no_config_from_the_environment
