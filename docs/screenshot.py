"""Make docs/explorer.png (or another picture): the explorer page of a run, as headless Chromium shows it.

    chordvae explore RUN && python docs/screenshot.py RUN [NAME.png]   # needs chromium, chromium-driver, selenium

On a progression run's page the picture shows "C G Am F" found (its nearest windows listed) and a
morph between two of the corpus's windows.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

DOCS = Path(__file__).resolve().parent
#: on a progression page: the typed progression looked up, and the windows a morph joins (quantiles along PC1)
QUERY, MORPH = "C G Am F", (0.03, 0.97)


def main(run: Path, name: str = "explorer.png") -> None:
    out = DOCS / name
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as profile:
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--user-data-dir={profile}", "--window-size=1240,1000"):
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            driver.get((run / "explorer.html").resolve().as_uri())
            time.sleep(2)   # the background and the points are drawn after load
            if driver.execute_script("return 'search' in window.chordvaeTest"):
                driver.execute_script(f"""
                    const t = window.chordvaeTest, n = DATA.points.n;
                    const order = [...Array(n).keys()].sort((a, b) => t.point(a)[0] - t.point(b)[0]);
                    t.setPath([{MORPH[0]}, {MORPH[1]}].map(f => t.point(order[Math.floor(f * n)])));
                    document.getElementById("search").value = {QUERY!r};
                    document.getElementById("search-form").requestSubmit();""")
                time.sleep(1)
            driver.save_screenshot(str(out))
        finally:
            driver.quit()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), *sys.argv[2:3])
