"""The web panel in a real browser (Debian's chromium driven by Playwright, never Playwright's own browser):
`serve` with a simulated treadmill, the panel listening beyond 127.0.0.1 (on 127.0.0.2, so all traffic stays
on the loopback): without the token the page is refused; with it, Arm waits for Start on the console, the
page shows the live speed, and its Stop button stops the belt as a person's stop (`panel_stop`, exit 130)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

import pytest

from retro_ftms.edge.panel import PanelAddress
from tests.service.conftest import PANEL_TIME_SCALE, PANEL_TOKEN, panel_config, served

CHROMIUM: Final = Path("/usr/bin/chromium")  # Debian's (scripts/bootstrap --browser installs it)
BEYOND: Final = "127.0.0.2"  # beyond 127.0.0.1 (a token is needed), still the loopback
UI_TIMEOUT_MS: Final = 10_000
NEXT_CHANGE_STATE: Final = """
() => {
  const state = JSON.parse(JSON.stringify(cards.get("hall").state));
  show("hall", { ...state, state: "running", next_change: { quantity: "speed", value: 1.29, in_s: 8.2 } });
}
"""
LINK_LOST_STATE: Final = """
() => {
  const state = JSON.parse(JSON.stringify(cards.get("hall").state));
  show("hall", { ...state, state: "stopped", safety_alarm: true, safety_reason: "link_lost" });
}
"""
# The page's speech, recorded instead of spoken (headless chromium has no voice).
SPEECH_RECORDER: Final = """
window.said = [];
window.SpeechSynthesisUtterance = function (text) { this.text = text; };
Object.defineProperty(window, "speechSynthesis", { value: { speak: (u) => window.said.push(u.text) } });
"""


@pytest.mark.timeout(40)
async def test_the_panel_in_a_browser_shows_live_speed_and_stops_the_belt(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("no /usr/bin/chromium: scripts/bootstrap --browser installs it")
        pytest.skip("no /usr/bin/chromium (scripts/bootstrap --browser installs it)")
    from playwright.async_api import async_playwright, expect

    config = panel_config(tmp_path, console_start_after_s=3.0)
    async with (
        served(config, PANEL_TIME_SCALE, PanelAddress(BEYOND, 0)) as service,
        async_playwright() as playwright,
    ):
        (treadmill,) = service.treadmills
        assert service.panel is not None
        assert treadmill.simulator is not None
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = await browser.new_page(viewport={"width": 430, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.add_init_script(SPEECH_RECORDER)
            root = f"http://{BEYOND}:{service.panel.port}/"
            refused = await page.goto(root)
            assert refused is not None
            assert refused.status == 401
            opened = await page.goto(f"{root}?token={PANEL_TOKEN}")
            assert opened is not None
            assert opened.status == 200
            card = page.locator(".card", has_text="Hall")
            await expect(card.locator(".state")).to_have_text("Idle", timeout=UI_TIMEOUT_MS)

            await page.locator("#speak").check()
            # Arm: the belt waits for Start on the console (the simulated person presses it 3 s later).
            await card.locator(".arm").click()
            await expect(card.locator(".state")).to_have_text("Armed", timeout=UI_TIMEOUT_MS)
            assert treadmill.simulator.belt_stopped()
            await expect(card.locator(".state")).to_have_text("Running", timeout=UI_TIMEOUT_MS)

            # Live: the speed shown moves as the belt speeds up.
            speed = card.locator(".speed .number")
            await expect(speed).to_have_text(re.compile(r"^0\.[1-9]|^[1-9]"), timeout=UI_TIMEOUT_MS)
            first = await speed.text_content()
            await expect(speed).not_to_have_text(first or "", timeout=UI_TIMEOUT_MS)
            await page.screenshot(path=tmp_path / "panel-running.png")

            await card.locator(".stop").click()
            await expect(card.locator(".last")).to_contain_text("stopped by you", timeout=UI_TIMEOUT_MS)
            await page.screenshot(path=tmp_path / "panel-stopped.png")
            # The next change and its countdown, once the spoken cues put `next_change` in the state.
            await page.evaluate(NEXT_CHANGE_STATE)
            await expect(card.locator(".next")).to_have_text("Next: speed 1.3 km/h in 0:08")
            # A link lost while running: the page tells the person to pull the safety key.
            await page.evaluate(LINK_LOST_STATE)
            await expect(card.locator(".alarm")).to_contain_text("pull the safety key now")
            said = await page.evaluate("window.said")
            assert "Armed. Press Start on the treadmill to begin." in said
            assert "Stopped: you pressed Stop on the web panel." in said
            assert errors == []
        finally:
            await browser.close()
        assert treadmill.simulator.belt_stopped()
        last = treadmill.state.snapshot.last_result
        assert last is not None
        assert (last.reason, last.exit_code) == ("panel_stop", 130)
