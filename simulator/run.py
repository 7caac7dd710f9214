"""`retro-ftms simulate`: the simulated treadmill alone, as a BLE peripheral on a Bumble transport."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from bumble.transport.common import TransportSpecError

from retro_ftms.clock import Clock
from retro_ftms.errors import ConfigError
from simulator.faults import FaultSpec
from simulator.gatt import SimulatedTreadmill
from simulator.model import SimulatorSettings

_LOGGER = logging.getLogger(__name__)


async def run_simulator(
    transport_spec: str,
    faults: Sequence[FaultSpec],
    settings: SimulatorSettings,
    clock: Clock,
    on_serving: Callable[[str], None] | None = None,
) -> None:
    """Serve on `transport_spec` (e.g. `tcp-server:127.0.0.1:PORT`, `usb:0`) until cancelled.

    A spec Bumble does not understand is a `ConfigError` (exit 2, one line), not an internal error.
    `on_serving(address)` is called once the transport is open and the treadmill advertises, so that
    nobody is told it serves before it does.
    """
    async with SimulatedTreadmill(clock, settings, faults) as sim:
        try:
            await sim.serve_on_transport(transport_spec)
        except TransportSpecError as exc:
            rule = f"not a Bumble transport ({exc}): use tcp-server:HOST:PORT, usb:N or serial:DEVICE"
            raise ConfigError("--transport", "--transport", transport_spec, rule) from exc
        _LOGGER.info("simulator %r serving on %s at %s", settings.name, transport_spec, sim.address)
        if on_serving is not None:
            on_serving(sim.address)
        await asyncio.Event().wait()
