"""Make docs/report.png: a ``livemask report`` page made by the real program from real clips' events.

    .venv/bin/python docs/make_report_shots.py [--data ../shared/data] [--out docs]

Two real clips of ``videos/`` are run through ``livemask run --headless --events`` as two cameras
(``entrance``: masked_woman_laptop.mp4, ``hall``: several_unmasked_faces.mp4) with faces blurred
(``--blur-faces blur``: the alert snapshots, and so the report's thumbnails, are blurred), each into a
temporary folder; ``livemask report`` makes the page from both event logs, and Chromium (Playwright,
/usr/bin/chromium) takes a full-page screenshot at 1100 px wide. Nothing but the PNG is written to --out.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIPS = {"entrance": "masked_woman_laptop.mp4", "hall": "several_unmasked_faces.mp4"}


def livemask(*args: str, cwd: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    subprocess.run([sys.executable, "-m", "livemask", *args], cwd=cwd, env=env, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="report-shots-") as tmp:
        tmp = Path(tmp)
        logs = []
        for camera, clip in CLIPS.items():
            log = tmp / f"{camera}.jsonl"
            livemask("run", "--source", str(args.data / "videos" / clip), "--headless", "--events", str(log),
                     "--blur-faces", "blur", "--set", f"run.snapshot_dir={tmp / camera}", cwd=tmp)
            logs.append(str(log))
        page = tmp / "report.html"
        livemask("report", *logs, "--out", str(page), "--title", "Mask compliance report: entrance and hall",
                 cwd=tmp)
        shot = args.out / "report.png"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
            tab = browser.new_page(viewport={"width": 1100, "height": 900})
            tab.goto(page.as_uri(), wait_until="load")
            tab.locator("details").first.evaluate("d => d.open = true")
            tab.screenshot(path=str(shot), full_page=True)
            browser.close()
        print(f"{shot}: from {', '.join(CLIPS.values())} ({page.stat().st_size / 1000:.0f} kB page)")


if __name__ == "__main__":
    main()
