"""Make docs/explorer.png: the explorer page of a run, as headless Chromium shows it.

    chordvae explore RUN && python docs/screenshot.py RUN   # needs chromium, chromium-driver, selenium
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

OUT = Path(__file__).resolve().parent / "explorer.png"


def main(run: Path) -> None:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as profile:
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--user-data-dir={profile}", "--window-size=1240,860"):
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            driver.get((run / "explorer.html").resolve().as_uri())
            time.sleep(2)   # the background and the points are drawn after load
            driver.save_screenshot(str(OUT))
        finally:
            driver.quit()
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
