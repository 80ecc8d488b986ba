"""Drive the live view in headless Chromium: what the browser test checks and what makes
the README screenshot (one code path). Uses the system's ``chromium`` and ``chromedriver``
(Debian: ``apt-get install chromium chromium-driver``); nothing downloads a browser."""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from dasha.errors import ConfigError

INSTALL_HINT = "install it with: apt-get install -y chromium chromium-driver (Debian/Ubuntu)"
WINDOW_PX = (1400, 1400)
_TEXT = "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';"
_COUNT = "return document.querySelectorAll(arguments[0]).length;"


def _find(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or (name if Path(name).is_file() else None)
        if found:
            return found
    return None


def chromium_driver() -> Any:
    """A headless Chromium WebDriver over the system's binaries, or a ``ConfigError`` that
    says how to install them."""
    browser = _find("chromium", "chromium-browser", "google-chrome")
    driver = _find("chromedriver", "/usr/lib/chromium/chromedriver")
    if browser is None or driver is None:
        missing = "chromium" if browser is None else "chromedriver"
        raise ConfigError(
            f"the browser check needs {missing}, which is not on PATH; {INSTALL_HINT}"
        )
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        raise ConfigError("the browser check needs selenium: pip install -e '.[test]'") from exc
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument(f"--window-size={WINDOW_PX[0]},{WINDOW_PX[1]}")
    options.page_load_strategy = "eager"  # the MJPEG image never finishes loading
    return webdriver.Chrome(service=Service(driver), options=options)


def _gray(png: bytes) -> np.ndarray:
    import cv2

    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValueError("the browser returned a screenshot that is not a PNG")
    return image.astype(np.float32)


def _wait(driver: Any, condition: Any, timeout_s: float, what: str) -> Any:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        value = condition(driver)
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(f"the page did not show {what} within {timeout_s:g} s")


def save_small_png(png: bytes, path: Path) -> int:
    """Write ``png`` with an adaptive 256-colour palette (a README image stays small)."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, optimize=True)
    return path.stat().st_size


def tour_page(
    url: str, *, screenshot_png: Path | None = None, timeout_s: float = 90.0
) -> dict[str, Any]:
    """Load the page, drag an AF window, click Trigger, wait for the cycle's end; returns
    the state and timeline the page shows and how much the frame changed meanwhile."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver = chromium_driver()
    try:
        driver.get(url)

        # Read in the page, in one script: the page re-renders the timeline every poll, so
        # an element found by one WebDriver call may be gone by the next (stale).
        def text(css: str) -> str:
            return str(driver.execute_script(_TEXT, css))

        def count(css: str) -> int:
            return int(driver.execute_script(_COUNT, css))

        _wait(
            driver,
            lambda d: text("#af-state") in ("Idle", "Focused", "Failed"),
            timeout_s,
            "a state",
        )
        box = driver.find_element(By.ID, "frame-box")
        _wait(
            driver,
            lambda d: d.execute_script("return document.getElementById('frame').naturalWidth > 0"),
            timeout_s,
            "a frame",
        )
        before = box.screenshot_as_png
        overlay = driver.find_element(By.ID, "overlay")
        width, height = overlay.size["width"], overlay.size["height"]
        # A window over the middle of the frame (the motorcycle on the simulator).
        ActionChains(driver).move_to_element_with_offset(
            overlay, -width // 4, -height // 4
        ).click_and_hold().move_by_offset(width // 2, height // 2).release().perform()
        _wait(driver, lambda d: "AfWindows" in text("#message"), timeout_s, "the AF window applied")
        driver.find_element(By.ID, "trigger").click()
        _wait(
            driver,
            lambda d: text("#af-state") == "Scanning" or count("table.cycle:not(.running)"),
            timeout_s,
            "the cycle start",
        )
        _wait(
            driver,
            lambda d: text("#af-state") in ("Focused", "Failed") and not count("table.running"),
            timeout_s,
            "the cycle's end",
        )
        time.sleep(0.5)  # a few more frames and polls after the end
        after = box.screenshot_as_png
        result = {
            "state": text("#af-state"),
            "moves": count("#timeline table.cycle:not(.running) tr.move"),
            "caption": text("#timeline caption"),
            "lens": text("#lens"),
            "message": text("#message"),
            "frame_change": float(np.mean(np.abs(_gray(after) - _gray(before)))),
        }
        if screenshot_png is not None:
            result["screenshot_bytes"] = save_small_png(
                driver.get_screenshot_as_png(), screenshot_png
            )
        return result
    finally:
        driver.quit()
