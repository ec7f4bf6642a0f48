"""The explorer page of a progression run: its size, what it holds, how long it takes to write,
and how long the page takes to decode and to encode a progression in headless Chromium; and how
well the page's ranking of a large corpus (along the means' first k principal directions, see
``chordvae.render.progressions.ranked_means``) agrees with the whole latent space's.

    python -m chordvae train --dataset progressions ../shared/datasets/pop909-train --bars 4 -o runs/pop
    python benchmarks/progression_page.py runs/pop          # needs chromium, chromium-driver, selenium
"""
from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

import torch

from chordvae import runs
from chordvae.render.explorer import write_explorer
from chordvae.render.progressions import corpus_points


def ranking_overlap(means: torch.Tensor, dims: list[int], queries: int = 300, n: int = 10) -> dict[int, float]:
    """For ``queries`` windows' own means (seeded draw) as queries: the share of their ``n``
    nearest windows in the whole latent space (themselves excluded) also among the ``n`` nearest
    along the means' first k principal directions (unquantised), for each k of ``dims``."""
    means = means.double()
    centred = means - means.mean(0)
    basis = torch.linalg.svd(centred, full_matrices=False).Vh
    asked = torch.randperm(len(means), generator=torch.Generator().manual_seed(0))[:queries]

    def top(x: torch.Tensor) -> torch.Tensor:
        d = torch.cdist(x[asked], x)
        d[torch.arange(len(asked)), asked] = float("inf")
        return d.topk(n, largest=False).indices

    whole = top(centred)
    return {k: sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(whole, top(centred @ basis[:k].T)))
            / (n * len(asked)) for k in dims}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--repeats", type=int, default=50, help="decodes and encodes timed in the page")
    parser.add_argument("--dims", default="2,4,8,9,12,16", help="principal directions to rank along (overlap)")
    args = parser.parse_args()
    run = runs.load_run(args.run, progress=False)
    dims = [int(k) for k in args.dims.split(",")]
    overlap = ranking_overlap(corpus_points(run).means, dims)
    print("share of the 10 nearest windows in the latent space also nearest along the means' first k "
          "principal directions (300 windows as queries): " + ", ".join(f"k={k} {v:.2f}" for k, v in overlap.items()))
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        page = write_explorer(run, Path(folder) / "explorer.html")
        seconds = time.perf_counter() - start
        html = page.read_text()
        data = json.loads(re.search(r'id="chordvae-data">(.*?)</script>', html, re.S).group(1))
        sizes = {k: len(json.dumps(v, separators=(",", ":"))) for k, v in data.items()}
        print(f"run {args.run} (latent {run.model.latent_dim}, {run.model.config.output} frames)")
        print(f"page {len(html.encode()) / 1e6:.2f} MB, written in {seconds:.1f} s; "
              f"{data['points']['n']} of {data['points']['total']} windows drawn, "
              + (f"means along their first {len(data['points']['ranking']['basis'])} principal directions "
                 f"({data['points']['ranking']['variance']:.0%} of their variance)" if data['points']['ranking']
                 else "means in the page"))
        print("largest parts (MB): " + ", ".join(f"{k} {v / 1e6:.2f}" for k, v in
                                                 sorted(sizes.items(), key=lambda kv: -kv[1])[:4]))
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        with tempfile.TemporaryDirectory() as profile:
            for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}"):
                options.add_argument(arg)
            driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
            try:
                start = time.perf_counter()
                driver.get(page.resolve().as_uri())
                load = time.perf_counter() - start
                decode, encode = driver.execute_script(f"""
                    const t = window.chordvaeTest, n = {args.repeats};
                    let s = performance.now();
                    for (let i = 0; i < n; i++) t.decodeAt(Math.cos(i), Math.sin(i));
                    const decode = (performance.now() - s) / n;
                    s = performance.now();
                    for (let i = 0; i < n; i++) t.search("C G Am F");
                    return [decode, (performance.now() - s) / n];""")
            finally:
                driver.quit()
        print(f"in Chromium: loaded in {load:.1f} s; {decode:.1f} ms per decoded progression, "
              f"{encode:.1f} ms per typed progression found (encoded, nearest windows ranked)")


if __name__ == "__main__":
    main()
