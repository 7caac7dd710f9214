"""A BLE heart-rate strap next to the treadmill: its bpm reaches the guard (the `heart_rate` trigger), the
event log, the display/MQTT snapshot; and the strap and its profile on their own."""

from __future__ import annotations

from typing import Final

import pytest
from bumble.link import LocalLink

from retro_ftms.ble.bumble_backend import BumbleCentral
from retro_ftms.ble.heart_rate import HeartRateMergingBus, HeartRateMonitor
from retro_ftms.clock import Clock
from retro_ftms.errors import ConnectError
from retro_ftms.events import DataEvent, Event, EventBus
from simulator.heart_rate_strap import STRAP_NAME, HeartRateProfile, SimulatedHeartRateStrap
from tests.resilience.conftest import RunResilient, belt_stopped_after

MAX_HR: Final = {"safety": {"max_heart_rate_bpm": 150}}
SHORT_PROGRAM: Final = "tests/cli/data/short.toml"


async def test_strap_bpm_reaches_the_event_log_and_the_snapshot(run: RunResilient) -> None:
    session = await run(SHORT_PROGRAM, hr_strap="95")
    log = session.describe()

    assert session.exit_code == 0, log
    rates = [e["hr_bpm"] for e in session.of_type("data")]
    assert rates, log
    assert set(rates[1:]) == {95}, rates  # the first record may come before the first measurement
    assert session.snapshot.hr_bpm == 95


async def test_heart_rate_above_the_maximum_stops_the_belt(run: RunResilient) -> None:
    """The strap's bpm rises above `max_heart_rate_bpm` mid-session: `heart_rate`, belt stopped, exit 3."""
    session = await run("first-steps", hr_strap="95,170@40", config=MAX_HR)
    log = session.describe()

    assert session.exit_code == 3, log
    assert session.end["reason"] == "heart_rate", log
    latch = session.safety[0]
    assert (latch["reason"], latch["action"]) == ("heart_rate", "stop"), log
    assert "170 bpm" in latch["detail"], log
    latch_t = float(latch["t"])
    assert [e for e in session.commands if e["t"] > latch_t and e["op"] in ("start", "set_speed")] == [], log
    assert belt_stopped_after(session, latch_t), log
    assert session.result.belt_stopped is True
    # The treadmill reports no heart rate: the records carried the strap's (the trigger itself may come
    # from the strap before the next record does, so the rise to 170 need not show in a record).
    assert max(e["hr_bpm"] or 0 for e in session.of_type("data") if e["t"] <= latch_t + 2) >= 95, log


async def test_no_trigger_below_the_maximum(run: RunResilient) -> None:
    session = await run(SHORT_PROGRAM, hr_strap="95,140@10", config=MAX_HR)
    assert session.exit_code == 0, session.describe()


async def test_monitor_follows_the_strap_by_name_and_tells_listeners(fast_clock: Clock) -> None:
    link = LocalLink()  # type: ignore[no-untyped-call]
    heard: list[int | None] = []
    async with SimulatedHeartRateStrap(fast_clock, HeartRateProfile.parse("80")) as strap:
        await strap.serve_on_link(link)
        async with (
            await BumbleCentral.on_link(link) as central,
            HeartRateMonitor(STRAP_NAME, clock=fast_clock, central=central) as monitor,
        ):
            monitor.add_listener(heard.append)
            await fast_clock.sleep(3.0)
            assert monitor.bpm == 80
            strap.set_bpm(123)
            await fast_clock.sleep(3.0)
            assert monitor.bpm == 123
            # The strap drops out: the heart rate is unknown (None), then it is back by itself.
            await strap.disconnect_all()
            await fast_clock.sleep(1.0)
            assert None in heard
            async with fast_clock.timeout(3000.0):
                while monitor.bpm != 123:
                    await fast_clock.sleep(1.0)
    assert heard[:1] == [80]
    assert 123 in heard


async def test_a_strap_that_is_not_there_is_a_connect_error(fast_clock: Clock) -> None:
    link = LocalLink()  # type: ignore[no-untyped-call]
    async with await BumbleCentral.on_link(link) as central:
        monitor = HeartRateMonitor("No Such Strap", clock=fast_clock, central=central, connect_timeout_s=0.2)
        with pytest.raises(ConnectError, match="No Such Strap"):
            async with monitor:
                pass


def test_merging_bus_fills_only_a_missing_heart_rate(fast_clock: Clock) -> None:
    bus = EventBus(fast_clock)
    seen: list[Event] = []
    bus.subscribe(lambda _t, event: seen.append(event))
    merging = HeartRateMergingBus(bus, lambda: 101)
    merging.publish(DataEvent(1.0, 0.0, 10, 5, None))
    merging.publish(DataEvent(1.0, 0.0, 11, 6, 88))  # the treadmill's own heart rate wins
    assert [e.hr_bpm for e in seen if isinstance(e, DataEvent)] == [101, 88]


@pytest.mark.parametrize(
    ("spec", "points"),
    [("95", ((0.0, 95),)), ("95, 170@40,120@90.5", ((0.0, 95), (40.0, 170), (90.5, 120)))],
)
def test_profile_parses(spec: str, points: tuple[tuple[float, int], ...]) -> None:
    profile = HeartRateProfile.parse(spec)
    assert profile.points == points
    assert profile.bpm_at(39.9) == 95
    assert profile.bpm_at(1e6) == points[-1][1]


@pytest.mark.parametrize(
    ("spec", "rule"),
    [
        ("95@3", "without @T"),
        ("95,170", "BPM@T"),
        ("fast", "not BPM"),
        ("95,170@40,120@20", "increase"),
        ("300", "30-240"),
    ],
)
def test_profile_errors_name_the_rule(spec: str, rule: str) -> None:
    with pytest.raises(ValueError, match=rule) as error:
        HeartRateProfile.parse(spec)
    assert repr(spec) in str(error.value)
