"""Make docs/cameras.md's screenshots of the Site page (docs/site-grid.png) and of a camera's Live view
(docs/site-camera.png).

    .venv/bin/python docs/make_site_shots.py [--data ../shared/data] [--out docs] [--chromium /usr/bin/chromium]

What is photographed is the real program: ``livemask serve --camera ...`` started as a command (the
committed model, config.yaml) with four cameras, driven by Debian's Chromium through Playwright:
three cameras are the real clips of ``videos/`` (letterboxed to 640x480 at 15 fps; two looped to 60 s, the
third, ``yard``, cut to 4 s so that its tile shows an ended file with its replay button) and the fourth,
``garage``, is a file that does not exist, so its tile shows a failed camera. The grid is taken once the
playing tiles have shown frames, ``yard`` has ended and the event list has lines; then a click on the
``entrance`` tile opens its Live view, whose "Freeze and explain" is clicked, and that page is taken once the
maps are shown.
The clips are only read; what is written is the program's own page. No browser is downloaded.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

VIEWPORT = {"width": 1280, "height": 1000}
NAMES = ("entrance", "lobby", "yard")
SECONDS = {"yard": 4}  # a short file: ended, with its replay button, when the grid is taken


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright
    from rtsphelpers import make_clip

    clips = sorted((args.data / "videos").glob("*.mp4"))
    if not clips:
        raise SystemExit(f"no clips in {args.data / 'videos'}")
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        cams = []
        for name, src in zip(NAMES, clips, strict=False):
            cams += ["--camera", f"{name}={make_clip(src, Path(tmp) / f'{name}.mp4', SECONDS.get(name, 60))}"]
        cams += ["--camera", f"garage={Path(tmp) / 'garage.mp4'}"]
        proc = subprocess.Popen([sys.executable, "-m", "livemask", "serve", "--port", "0", *cams], cwd=ROOT,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()
            match = re.search(r"serving on (http://\S+?)/site", line)
            if match is None:
                raise SystemExit(f"livemask serve did not start (exit status {proc.poll()}): {line.strip()!r}")
            browser = pw.chromium.launch(executable_path=args.chromium, headless=True)
            try:
                page = browser.new_page(viewport=VIEWPORT)
                page.goto(match.group(1) + "/site")
                page.wait_for_selector("body[data-ready='1']", timeout=60_000)
                names = [n for n in NAMES[:len(clips)] if n not in SECONDS]
                page.wait_for_function(
                    "names => names.every(n => Number(document.querySelector(`.tile[data-camera='${n}']`)"
                    "?.dataset.loaded || 0) >= 30)", arg=names, timeout=120_000)
                if len(clips) >= len(NAMES):
                    page.wait_for_selector(".tile[data-camera='yard'] .tile-replay", timeout=60_000)
                page.wait_for_selector("#site-events li", timeout=60_000)
                out = args.out / "site-grid.png"
                page.screenshot(path=str(out), full_page=False)
                print(f"{out}: states {page.eval_on_selector_all('.tile', 'els => els.map(e => e.dataset.state)')}")
                page.click(".tile[data-camera='entrance']")  # the camera's Live view: freeze and explain
                page.wait_for_function("window.liveStats && window.liveStats.frames >= 30", timeout=60_000)
                page.wait_for_function("document.querySelectorAll('#live-counts li').length > 0", timeout=60_000)
                page.click("#live-explain")
                page.wait_for_selector("#live-explained[data-state='explained']", timeout=180_000)
                out = args.out / "site-camera.png"
                page.screenshot(path=str(out), full_page=True)
                print(f"{out}: {page.inner_text('#live-explained > p')}")
            finally:
                browser.close()  # first: open streams would hold up the server's graceful shutdown
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
