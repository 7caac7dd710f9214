"""`[heart_rate]`: the strap of a real treadmill's runs comes from the configuration when `--hr-device` is
not given; next to the simulator only `--hr-strap` counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from retro_ftms.clock import Clock
from retro_ftms.edge.app import RunOptions, run_session
from retro_ftms.edge.config import HeartRateConfig, load_config
from retro_ftms.errors import ConfigError, ConnectError
from simulator.gatt import SimulatedTreadmill
from tests.conftest import free_port
from tests.session.conftest import Config, QuietUI, prepare

SHORT_PROGRAM = "tests/cli/data/short.toml"
STRAP = "Configured Strap"
STRAP_CONFIG: Config = {"heart_rate": {"device": STRAP, "connect_timeout_s": 0.3}}


def test_defaults_file_and_environment() -> None:
    assert load_config(None, env={}).heart_rate == HeartRateConfig(device=None, connect_timeout_s=20.0)
    env = {
        "RETRO_FTMS_HEART_RATE__DEVICE": "AA:BB:CC:DD:EE:FF",
        "RETRO_FTMS_HEART_RATE__CONNECT_TIMEOUT_S": "5",
    }
    assert load_config(None, env=env).heart_rate == HeartRateConfig(
        device="AA:BB:CC:DD:EE:FF", connect_timeout_s=5
    )


def test_bad_values_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "retro-ftms.toml"
    path.write_text("[heart_rate]\nconnect_timeout_s = 0.0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="connect_timeout_s"):
        load_config(path, env={})


async def test_a_real_treadmill_run_looks_for_the_configured_strap(tmp_path: Path) -> None:
    """Nothing moves: the strap named in `[heart_rate]` is looked for (within its timeout) first."""
    _events, config_path = prepare(tmp_path, STRAP_CONFIG)
    port = free_port()
    async with SimulatedTreadmill(Clock()) as sim:
        await sim.serve_on_transport(f"tcp-server:127.0.0.1:{port}")
        options = RunOptions(
            program=SHORT_PROGRAM,
            device=sim.address,
            transport=f"tcp-client:127.0.0.1:{port}",
            config_path=config_path,
        )
        with pytest.raises(ConnectError, match=STRAP):
            await run_session(options, QuietUI())
        assert sim.received == []


async def test_the_simulator_ignores_the_configured_strap(tmp_path: Path) -> None:
    _events, config_path = prepare(tmp_path, STRAP_CONFIG)
    options = RunOptions(program=SHORT_PROGRAM, simulator=True, config_path=config_path, time_scale=50.0)
    assert await run_session(options, QuietUI()) == 0
