"""The monthly report as PDF: the HTML page printed by headless Chromium (the Debian package, driven by Playwright).

Chinese text needs a CJK font installed for Chromium (fonts-noto-cjk, `make system-deps`); the page names
Noto Sans CJK SC first. Playwright never downloads a browser here: the system Chromium is used.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


class ChromiumMissingError(RuntimeError):
    """No Chromium to print the PDF with."""


def chromium_path() -> str | None:
    """The system Chromium (CHROMIUM_PATH overrides), if installed."""
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


def write_pdf(html: str, path: Path) -> Path:
    """Print the page to an A4 PDF at path (blocking; a few seconds)."""
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    if exe is None:
        raise ChromiumMissingError("No Chromium found for the PDF report: install it with `make system-deps` or set CHROMIUM_PATH.")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_content(html, wait_until="load")
            page.emulate_media(media="print")
            page.pdf(path=str(path), format="A4", print_background=True, margin={"top": "14mm", "bottom": "14mm",
                                                                                 "left": "12mm", "right": "12mm"})
        finally:
            browser.close()
    return path
