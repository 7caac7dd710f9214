"""The harness hands back the session's simulator: a test reads its own record through its public surface,
not only what it published in the event log."""

from __future__ import annotations

from tests.session.conftest import RunSession


async def test_the_simulator_record_matches_the_event_log(run: RunSession) -> None:
    session = await run("first-steps", "safety-key@40")
    sim = session.simulator
    assert sim is not None
    assert session.latch_reason == "safety_key", session.describe()
    assert sim.belt_stopped()
    assert sim.model.speed_kmh == 0.0
    assert [r.data.hex() for r in sim.received] == [e["data"] for e in session.received]
