"""`retro-ftms simulate`: the simulated treadmill alone, as a BLE peripheral on a Bumble transport."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from retro_ftms.clock import Clock
from simulator.faults import FaultSpec
from simulator.gatt import SimulatedTreadmill
from simulator.model import SimulatorSettings

_LOGGER = logging.getLogger(__name__)


async def run_simulator(
    transport_spec: str,
    faults: Sequence[FaultSpec],
    settings: SimulatorSettings,
    clock: Clock,
) -> None:
    """Serve on `transport_spec` (e.g. `tcp-server:127.0.0.1:PORT`, `usb:0`) until cancelled."""
    async with SimulatedTreadmill(clock, settings, faults) as sim:
        await sim.serve_on_transport(transport_spec)
        _LOGGER.info("simulator %r serving on %s at %s", settings.name, transport_spec, sim.address)
        await asyncio.Event().wait()
