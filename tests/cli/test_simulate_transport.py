"""`retro-ftms simulate --transport bogus`: one clear line and exit 2, not an internal error."""

from __future__ import annotations

from typer.testing import CliRunner

from retro_ftms.edge.cli import app


def test_bogus_transport_is_exit_2() -> None:
    result = CliRunner().invoke(app, ["simulate", "--transport", "bogus"])
    assert result.exit_code == 2, result.output
    assert "internal error" not in result.output
    assert "not a Bumble transport" in result.output


def test_bogus_transport_never_claims_to_serve() -> None:
    """ "simulated treadmill on ..." is said only once the transport is open."""
    result = CliRunner().invoke(app, ["simulate", "--transport", "bogus"])
    assert result.exit_code == 2, result.output
    assert "simulated treadmill" not in result.output
