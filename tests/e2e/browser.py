"""Headless Chromium (Debian package) driven by Playwright; never downloads a browser."""
from __future__ import annotations

import os
import shutil

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    """The system Chromium, if installed."""
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


async def desk_login(browser, base: str, user: str, password: str, console: list[str] | None = None):
    """A new page of `browser` logged in to the agent desk at `base` as `user` (the desk shown, its user named);
    `console` collects what the pages log to the console (Chromium reports a Content-Security-Policy violation there)."""
    page = await browser.new_page()
    if console is not None:
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    await page.goto(base + "/desk/login")
    await page.fill("#username", user)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/desk")
    await page.wait_for_selector("#who:not(:empty)")
    return page
