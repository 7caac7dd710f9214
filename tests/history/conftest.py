"""History tests: the store on its own, and sessions through the real stack recorded into it (a thin layer
over `tests.harness`)."""

from __future__ import annotations

from tests import harness

_no_config_from_the_environment = harness.no_config_from_the_environment
