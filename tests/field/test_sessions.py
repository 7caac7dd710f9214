"""Whole sessions through bleak over Bumble against the simulator showing the real machines' shapes: the
session ends on a pulled safety key (or a console stop/pause) for the right reason, with no `bad_data`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

from retro_ftms.clock import Clock
from retro_ftms.edge import app
from simulator.model import Fields, HeartRateModel, SimulatorSettings
from simulator.quirks import with_quirks
from simulator.server import FtmsServer
from tests import harness
from tests.field.test_captures import CAPTURES
from tests.harness import QuietUI
from tests.session.conftest import belt_stopped_at_end

FLAT = Path(__file__).parent.parent / "quirks" / "data" / "flat.toml"

_no_config_from_the_environment = harness.no_config_from_the_environment


async def test_padded_status_safety_key_stops_with_the_right_reason(tmp_path: Path) -> None:
    session = await harness.run_in(
        tmp_path, FLAT, "safety-key@20", ui=QuietUI(), quirks=("status-padding",), time_scale=100.0
    )
    assert session.exit_code == 3, session.describe()
    assert session.latch_reason == "safety_key", session.describe()
    assert all(e["reason"] != "bad_data" for e in session.safety)
    assert all(e["reason"] != "stop_unconfirmed" for e in session.safety), session.describe()
    assert belt_stopped_at_end(session), session.describe()


async def test_padded_console_stop_is_a_user_stop(tmp_path: Path) -> None:
    session = await harness.run_in(
        tmp_path, FLAT, "user-stop@20", ui=QuietUI(), quirks=("status-padding",), time_scale=100.0
    )
    assert session.exit_code == 3, session.describe()
    assert session.latch_reason == "user_stop", session.describe()
    assert all(e["reason"] != "bad_data" for e in session.safety)


async def test_reserved_training_status_and_padding_end_on_the_safety_key(tmp_path: Path) -> None:
    session = await harness.run_in(
        tmp_path,
        FLAT,
        "safety-key@20",
        ui=QuietUI(),
        quirks=("status-padding", "reserved-training-status", "trailing-bytes"),
        time_scale=100.0,
    )
    assert session.exit_code == 3, session.describe()
    assert session.latch_reason == "safety_key", session.describe()
    assert all(e["reason"] != "bad_data" for e in session.safety)
    assert all(e["reason"] != "stop_unconfirmed" for e in session.safety), session.describe()
    assert belt_stopped_at_end(session), session.describe()


# -- one session per machine of field-captures.json -------------------------------------------------------


WALKING_PAD: Final = Fields(total_distance=True, inclination=False, expended_energy=True, elapsed_time=True)


@dataclass(frozen=True)
class Machine:
    """A machine of the captures as the simulator plays it: its record fields (so its flags), ranges and
    quirk profiles, and the `[ble]` configuration such a machine needs."""

    device: str  # how its captures' `device` begins
    quirks: tuple[str, ...] = ()
    fields: Fields = WALKING_PAD
    heart_rate: bool = False
    speed_range_kmh: tuple[float, float, float] = (0.5, 16.0, 0.1)
    config: harness.Config | None = None

    @property
    def settings(self) -> SimulatorSettings:
        low, high, step = self.speed_range_kmh
        base = SimulatorSettings(
            fields=self.fields,
            heart_rate=HeartRateModel() if self.heart_rate else None,
            speed_min_kmh=low,
            speed_max_kmh=high,
            speed_step_kmh=step,
        )
        return with_quirks(base, self.quirks)

    def captures(self, uuid: str) -> list[bytes]:
        return [
            bytes.fromhex(p["hex"])
            for p in CAPTURES
            if p["device"].startswith(self.device) and p["char"].endswith(f"({uuid})")
        ]


MACHINES: Final = {
    "cs-wp8": Machine(
        "CITYSPORTS CS-WP8",
        ("vendor-steps", "status-padding", "ramp-glitch", "zero-wakeup"),
        WALKING_PAD,
        speed_range_kmh=(1.0, 6.0, 0.5),
    ),
    "citysports-hughesjs": Machine(
        "CITYSPORTS walking pad",
        ("vendor-steps", "reserved-training-status", "zero-wakeup"),
        WALKING_PAD,
        speed_range_kmh=(1.0, 6.0, 0.5),
    ),
    "urevo-e1l": Machine(
        "UREVO E1L",
        (
            "vendor-steps",
            "status-padding",
            "reserved-training-status",
            "target-echo",
            "flat-incline-accepted",
        ),
        WALKING_PAD,
        heart_rate=True,
        speed_range_kmh=(0.96, 6.43, 0.32),
    ),
    "sperax-rm01": Machine("Sperax RM-01", (), WALKING_PAD),
    "urevo-3s": Machine(
        "UREVO SpaceWalk 3S",
        ("vendor-steps", "zero-wakeup"),
        Fields(inclination=True, elevation_gain=True, expended_energy=True),
        heart_rate=True,
    ),
    "horizon": Machine("Horizon", ("zero-wakeup",), WALKING_PAD),
    "bh-t01": Machine(
        "BH Fitness",
        ("incline-1000", "cp-notify"),
        Fields(inclination=True, expended_energy=True, elapsed_time=False),
        heart_rate=True,
        config={"ble": {"incline_report_scale": 0.16}},
    ),
    "kettler-alpha-run-600": Machine(
        "Kettler Alpha Run 600", (), Fields(inclination=True, expended_energy=True), heart_rate=True
    ),
    "fitshow-fs6041f1": Machine(
        "FitShow-module",
        ("reserved-training-status",),
        Fields(inclination=True, elevation_gain=True, expended_energy=True),
        heart_rate=True,
    ),
    "dbt-fitshow": Machine(
        "DBT Walking Pad",
        ("mph-target",),
        WALKING_PAD,
        speed_range_kmh=(0.6, 3.8, 0.1),
        config={"ble": {"speed_target_units": "mph"}},
    ),
}
FIELD: Final = Path(__file__).parent / "data" / "field.toml"
# After the program's ramp down from 1.2 to 1.0 km/h at 15 s.
SAFETY_KEY: Final = "safety-key@22"
PADDED_STATUS: Final = frozenset(
    {bytes.fromhex("04 00 00"), bytes.fromhex("02 01 00"), bytes.fromhex("02 02 00")}
)


def test_every_machine_of_the_captures_has_a_session() -> None:
    devices = {p["device"] for p in CAPTURES}
    assert len(devices) == len(MACHINES) == 10
    for device in devices:
        assert [key for key, m in MACHINES.items() if device.startswith(m.device)] != [], device
        assert len([m for m in MACHINES.values() if device.startswith(m.device)]) == 1, device


@pytest.mark.parametrize("key", list(MACHINES))
def test_the_simulator_plays_the_machines_shapes(key: str) -> None:
    """Its records carry the flags of the machine's captured records, its ranges read as captured, and
    its Machine Status is padded exactly where the machine's is."""
    machine = MACHINES[key]
    server = FtmsServer(Clock(), machine.settings)
    server.model.start()
    record = bytes(server.record(server.model.snapshot()))
    for captured in machine.captures("0x2ACD"):
        assert record[:2] == captured[:2], (record.hex(" "), captured.hex(" "))
        assert len(record) == len(captured)
    for captured in machine.captures("0x2AD4"):
        assert bytes(server.speed_range) == captured
    for captured in machine.captures("0x2AD5"):
        assert bytes(server.inclination_range) == captured
    statuses = machine.captures("0x2ADA")
    if any(status in PADDED_STATUS for status in statuses):
        assert "status-padding" in machine.quirks
    elif statuses:
        assert "status-padding" not in machine.quirks


@pytest.mark.parametrize("key", list(MACHINES))
async def test_a_session_on_each_machine_ends_on_the_pulled_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    machine = MACHINES[key]
    monkeypatch.setattr(app, "simulator_settings", lambda _quirks: machine.settings)
    session = await harness.run_in(
        tmp_path, FIELD, SAFETY_KEY, ui=QuietUI(), config=machine.config, time_scale=100.0
    )
    assert session.exit_code == 3, session.describe()
    assert session.latch_reason == "safety_key", session.describe()
    reasons = [e["reason"] for e in session.safety]
    assert "bad_data" not in reasons, session.describe()
    assert "console_override" not in reasons, session.describe()
    assert "stop_unconfirmed" not in reasons, session.describe()
    assert belt_stopped_at_end(session), session.describe()
    moving = [e["speed_kmh"] for e in session.of_type("data") if e["speed_kmh"]]
    assert moving, session.describe()
    assert max(moving) <= 1.2 + 0.6 + 1e-9, session.describe()  # a CS-WP8 glitch at most
    # The machine's own record shape went over the air: incline and elapsed time only where it has them.
    inclines = {e["incline_pct"] is None for e in session.of_type("data")}
    assert inclines == {not machine.fields.inclination}, session.describe()
    elapsed = {e["elapsed_s"] is None for e in session.of_type("data")}
    assert elapsed == {not machine.fields.elapsed_time}, session.describe()
