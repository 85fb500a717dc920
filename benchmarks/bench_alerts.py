"""Does a dead or stalled alert webhook slow the video? Frames per second of the same run, same process.

The clip is ../shared/data/videos/several_unmasked_faces.mp4 (real unmasked people, 640x360,
275 frames). Each run is the engine of ``livemask run --headless --events`` (threaded capture /
detect / classify stages, tracking, the people stage, the event log) with alerts made frequent
(``after_s`` 0.3 s, ``cooldown_s`` 1 s, snapshots on), and one of:

* no webhook;
* a dead webhook: a local port where nothing listens (every POST is refused at once, then retried);
* a stalled webhook: a local server that accepts connections and never answers (every POST waits
  for its 2 s timeout, then is retried with backoff).

The configurations are run in turn (the order rotating), ``--repeats`` times, and the median fps of each is reported
(fps = frames / wall time of the engine's run, which includes the end-of-run grace period given to
the webhook, ``finish_s``, 0 here so only the video work is timed).

Usage: python benchmarks/bench_alerts.py [--repeats 6] [--model PATH]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, rotated, table

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT.parent / "shared" / "data" / "videos" / "several_unmasked_faces.mp4"


class Stalled:
    """Accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.stop = threading.Event()
        self.sock.settimeout(0.1)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                continue

    def close(self):
        self.stop.set()
        for c in self.held:
            c.close()
        self.sock.close()


def dead_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def one_run(url: str | None, detector, classifier, snapshots: Path) -> dict:
    from livemask.engine.capture import Capture
    from livemask.engine.engine import Engine
    from livemask.engine.people import AlertRule, People, PeopleOptions
    from livemask.engine.pipeline import FrameProcessor
    from livemask.engine.sources import FileSource
    from livemask.engine.tracker import Tracker
    from livemask.sinks.alerts import AlertSink, WebhookNotifier
    from livemask.sinks.recording import EventLog

    capture = Capture(FileSource(CLIP), queue_size=4, stop_event=threading.Event())
    capture.open()
    notifiers = [WebhookNotifier(url, timeout_s=2.0, retries=3, backoff_s=0.5)] if url else []
    people = People(PeopleOptions(), AlertRule(("no_mask", "mask_incorrect"), after_s=0.3, cooldown_s=1.0), snapshots)
    with tempfile.TemporaryDirectory() as tmp:
        sinks = [AlertSink(notifiers, finish_s=0.0), EventLog(Path(tmp) / "e.jsonl")]
        engine = Engine(capture, FrameProcessor(detector, classifier, Tracker(), 2), sinks, people=people)
        return engine.run()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--model", default=str(ROOT / "models" / "mask_classifier.keras"))
    args = parser.parse_args()
    if not CLIP.is_file():
        print(f"clip not found: {CLIP}", file=sys.stderr)
        return 2
    from livemask.core.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from face_detector import CenterFaceDetector
    from livemask.models.backends.keras_model import MaskClassifier

    detector = CenterFaceDetector(input_long_side=320, coarse_long_side=0)  # `livemask run`'s video setting
    classifier = MaskClassifier(args.model)
    classifier.warmup()
    stalled = Stalled()
    urls = {"no webhook": None, "dead webhook (refused)": f"http://127.0.0.1:{dead_port()}/hook",
            "stalled webhook (never answers)": f"http://127.0.0.1:{stalled.port}/hook"}
    fps: dict[str, list[float]] = {k: [] for k in urls}
    last: dict[str, dict] = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as snaps:
        one_run(None, detector, classifier, Path(snaps))  # warm-up, not counted
        for name in rotated(list(urls), args.repeats):  # the order rotates: no configuration always goes first
            summary = one_run(urls[name], detector, classifier, Path(snaps))
            fps[name].append(summary["fps"])
            last[name] = summary
    load_after = os.getloadavg()
    stalled.close()
    rows = []
    for name in urls:
        alerts = last[name].get("alerts", {})
        hook = alerts.get("webhook", {})
        rows.append([name, f"{statistics.median(fps[name]):.1f}", " / ".join(f"{v:.1f}" for v in fps[name]),
                     alerts.get("fired", 0), hook.get("sent", "-"),
                     "-" if not hook else hook["failed"] + hook["dropped"] + hook["unsent"]])
    print(f"Alerts and webhooks: {CLIP.name}, {last['no webhook']['frames_written']} frames, "
          f"{args.repeats} repeats, same process")
    print(f"Machine: {machine()}")
    print(f"Load average (1 min) before / after: {load_before[0]:.1f} / {load_after[0]:.1f}")
    print()
    print(table(["webhook", "median fps", "runs (fps)", "alerts per run", "POSTs sent",
                 "not sent (failed + dropped + unsent)"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
