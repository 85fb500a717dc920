"""Make the two screenshots of the browser page (docs/serve-photo.png, docs/serve-live.png).

    .venv/bin/python docs/make_serve_shots.py [--data ../shared/data] [--out docs] [--chromium /usr/bin/chromium]

What is photographed is the real program: ``livemask serve`` started as a command (the committed
model, config.yaml), driven by Debian's Chromium through Playwright, the way a user would.

* The scene: three portraits on a brick wall (1280x720), the first ``yyn_*`` photo (by file name)
  of ``faces/with_mask``, ``faces/mask_weared_incorrect`` and ``faces/without_mask`` that the
  committed model, after CenterFace, labels as its folder says (one face found in it).
* serve-photo.png: the scene uploaded on the Photo page, then "Explain all".
* serve-live.png: a 20 s clip of the scene, each portrait drifting a few pixels a frame (so the people
  stage sees people, not pictures), as ``serve --source``; the Live page once "people so far" has
  counted all three and an alert is in the event list, then "Freeze and explain".

The photos are only read; what is written is the program's own page. Needs the serve extra
(``pip install -e '.[serve]'``) and Playwright's Python package; no browser is downloaded.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FRAME = (1280, 720)
WALL = (176, 184, 190)  # BGR, a light grey wall
MORTAR = (70, 74, 78)  # its brick joints
FOLDERS = {"with_mask": "mask", "mask_weared_incorrect": "mask_incorrect", "without_mask": "no_mask"}
HEIGHT = 300  # px of each portrait in the scene
FPS, SECONDS = 15, 20
VIEWPORT = {"width": 1100, "height": 1000}


def portraits(data: Path) -> list[tuple[Path, np.ndarray]]:
    """The first yyn_* photo of each folder that the model labels as the folder says."""
    from face_detector import CenterFaceDetector
    from livemask.models.backends import open_classifier

    detector = CenterFaceDetector()
    classifier = open_classifier(str(ROOT / "models" / "mask_classifier.keras"))
    chosen = []
    for folder, label in FOLDERS.items():
        for path in sorted((data / "faces" / folder).glob("yyn_*.jpg")):
            image = cv2.imread(str(path))
            if image is None:
                continue
            dets = detector.detect(image)
            if len(dets) == 1 and classifier.classify(image, dets).labels[0] == label:
                chosen.append((path, image))
                break
        else:
            raise SystemExit(f"no yyn_* photo in {data / 'faces' / folder} with one face labelled {label}")
    return chosen


@functools.cache
def wall() -> np.ndarray:
    """The wall: light grey bricks, whose joints are corners that stay still, as a real room's are. (On a
    blank wall the people stage once took a drifting portrait's motion for the camera's, and so the
    portrait for a picture; the camera's motion now has to span the frame, see docs/video.md.)"""
    w, h = FRAME
    image = np.full((h, w, 3), WALL, np.uint8)
    brick_w, brick_h = 60, 30
    for row, y in enumerate(range(0, h, brick_h)):
        cv2.line(image, (0, y), (w, y), MORTAR, 3)
        for x in range(-(brick_w // 2) * (row % 2), w, brick_w):
            cv2.line(image, (x, y), (x, y + brick_h), MORTAR, 3)
    return image


def scene(photos: list[np.ndarray], t: float = 0.0) -> np.ndarray:
    """The wall with the portraits side by side; at time ``t`` each drifts on its own small circle."""
    w, h = FRAME
    frame = wall().copy()
    slot = w // len(photos)
    for k, photo in enumerate(photos):
        ph, pw = photo.shape[:2]
        width = round(pw * HEIGHT / ph)
        small = cv2.resize(photo, (width, HEIGHT), interpolation=cv2.INTER_AREA if HEIGHT < ph else cv2.INTER_CUBIC)
        dx, dy = 24 * np.sin(1.3 * t + 2 * k), 16 * np.cos(0.9 * t + k)
        x = int(np.clip(k * slot + (slot - width) // 2 + dx, 0, w - width))
        y = int(np.clip((h - HEIGHT) // 2 + dy, 0, h - HEIGHT))
        frame[y:y + HEIGHT, x:x + width] = small
    return frame


def serve(*args: str) -> tuple[subprocess.Popen, str]:
    """``livemask serve`` on a free port (``--port 0``) and its URL, from the line it prints once it listens."""
    proc = subprocess.Popen([sys.executable, "-m", "livemask", "serve", "--port", "0", *args], cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    match = re.search(r"serving on (http://\S+?)/", line)
    if match is None:
        stop(proc)
        raise SystemExit(f"livemask serve did not start (exit status {proc.returncode}): {line.strip()!r}")
    return proc, match.group(1)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(ROOT / "docs"))
    parser.add_argument("--chromium", default=os.environ.get("LIVEMASK_CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    chosen = portraits(Path(args.data))
    photos = [image for _, image in chosen]
    for path, _ in chosen:
        print(f"portrait: {path.name} ({path.parent.name})")
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        still, clip = Path(tmp) / "scene.jpg", Path(tmp) / "scene.mp4"
        cv2.imwrite(str(still), scene(photos), [cv2.IMWRITE_JPEG_QUALITY, 92])
        writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), FPS, FRAME)
        for i in range(FPS * SECONDS):
            writer.write(scene(photos, i / FPS))
        writer.release()
        browser = pw.chromium.launch(executable_path=args.chromium, headless=True)
        proc, url = serve("--source", str(clip))
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(url + "/")
            page.wait_for_selector("body[data-ready='1']", timeout=30_000)
            page.set_input_files("#files", str(still))
            page.wait_for_selector(".card[data-state='labelled']", timeout=60_000)
            page.locator(".card").first.locator(".explain-all").click()
            page.wait_for_selector(".card[data-state='explained']", timeout=90_000)
            page.screenshot(path=str(out / "serve-photo.png"), full_page=True)
            print(f"{out / 'serve-photo.png'}: labels "
                  f"{page.eval_on_selector_all('.face', 'els => els.map(e => e.dataset.label)')}")

            page.goto(url + "/?mode=live")
            page.wait_for_selector("body[data-ready='1']", timeout=30_000)
            try:
                page.wait_for_function("/^3 /.test(document.getElementById('live-people')?.textContent || '')",
                                       timeout=60_000)
            except Exception:  # say what the page showed instead
                page.screenshot(path=str(Path(tempfile.gettempdir()) / "serve-live-timeout.png"), full_page=True)
                raise SystemExit(f"the Live page did not count 3 people in 60 s: {page.inner_text('#live-people')!r} "
                                 f"(page saved to {tempfile.gettempdir()}/serve-live-timeout.png)") from None
            page.wait_for_selector("#live-events li.alert", timeout=60_000)
            page.click("#live-explain")
            page.wait_for_selector("#live-explained[data-state='explained']", timeout=90_000)
            page.screenshot(path=str(out / "serve-live.png"), full_page=True)
            print(f"{out / 'serve-live.png'}: people so far {page.inner_text('#live-people')!r}")
        finally:
            browser.close()  # first: an open stream would hold up the server's graceful shutdown
            stop(proc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
