"""Sources and the capture thread: typed frames, buffer policies, stop protocol, errors, reconnects."""

from __future__ import annotations

import itertools
import queue
import socket
import threading
import time

import cv2
import numpy as np
import pytest
from livehelpers import MjpegServer, read_code, write_clip

from livemask.core.errors import SourceError
from livemask.core.types import Frame
from livemask.engine.capture import Capture, SourceOptions
from livemask.engine.channel import BufferPolicy
from livemask.engine.sources import (
    CameraSource,
    FileSource,
    FolderSource,
    Source,
    UrlSource,
    parse_source,
)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clips") / "clip.mp4", 60)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, clip):
    out = tmp_path_factory.mktemp("folder")
    cap = cv2.VideoCapture(str(clip))
    for i in range(12):
        _ok, frame = cap.read()
        cv2.imwrite(str(out / f"img_{i:03d}.png"), frame)
    cap.release()
    (out / "notes.txt").write_text("not an image")
    return out


class EndlessSource(Source):
    """A live source that makes frames as fast as asked, numbered in their pixels."""

    live = True

    def __init__(self, delay: float = 0.0, fail_after: int | None = None):
        super().__init__("endless")
        self.delay, self.fail_after, self.n = delay, fail_after, 0
        self.closed = False

    def _open(self):
        self.fps = 1000.0

    def _read(self):
        if self.fail_after is not None and self.n >= self.fail_after:
            raise RuntimeError("sensor unplugged")
        if self.delay:
            time.sleep(self.delay)
        self.n += 1
        return np.full((8, 8, 3), self.n % 256, np.uint8)

    def _close(self):
        self.closed = True


def consume_all(capture: Capture) -> list[Frame]:
    return list(capture)


def test_parse_source(tmp_path):
    assert parse_source("0") == ("camera", 0)
    assert parse_source(3) == ("camera", 3)
    assert parse_source("rtsp://user:pw@cam/stream")[0] == "url"
    assert parse_source("https://example.org/a.mjpg")[0] == "url"
    assert parse_source(str(tmp_path)) == ("folder", str(tmp_path))
    assert parse_source("video.mp4") == ("file", "video.mp4")


def test_url_credentials_are_not_in_the_name():
    # the whole userinfo goes: a bare "TOKEN@host" cannot be told from a user name
    src = UrlSource("rtsp://admin:secret@10.0.0.1/live")
    assert "secret" not in src.name and "admin" not in src.name and src.name == "rtsp://***@10.0.0.1/live"


def test_file_frames_are_typed_complete_and_in_order(clip):
    with Capture(FileSource(clip), queue_size=2) as capture:
        assert capture.policy is BufferPolicy.BLOCK
        frames = consume_all(capture)
    assert len(frames) == 60
    assert all(isinstance(f, Frame) and f.image.shape == (240, 320, 3) for f in frames)
    assert [f.frame_id for f in frames] == list(range(60))
    assert [read_code(f.image) for f in frames] == list(range(60))
    assert all(a.timestamp <= b.timestamp for a, b in itertools.pairwise(frames))
    assert frames[30].position_ms == pytest.approx(1000.0, abs=1)
    assert capture.stats.dropped == 0 and capture.stats.frames == 60


def test_slow_consumer_of_a_file_loses_nothing(clip):
    capture = Capture(FileSource(clip), queue_size=1).start()
    got = []
    for frame in capture:
        time.sleep(0.005)
        got.append(frame.frame_id)
    capture.stop()
    assert got == list(range(60)) and capture.stats.dropped == 0


def test_max_frames(clip):
    with Capture(FileSource(clip), max_frames=7) as capture:
        assert [f.frame_id for f in consume_all(capture)] == list(range(7))


def test_folder_source_skips_non_images_in_name_order(folder):
    with Capture(FolderSource(folder, fps=10)) as capture:
        frames = consume_all(capture)
    assert len(frames) == 12
    assert [read_code(f.image) for f in frames] == list(range(12))
    assert frames[5].position_ms == pytest.approx(500.0)


@pytest.mark.parametrize("bad_index", [0, 1, 2])
def test_unreadable_image_in_folder_is_skipped_and_counted_wherever_it_is(folder, tmp_path, bad_index, caplog):
    """First, middle or last: the same outcome (one log line naming it, the rest read), issue 10 cause 13."""
    bad = tmp_path / "imgs"
    bad.mkdir()
    for p in sorted(folder.glob("*.png"))[:3]:
        (bad / p.name).write_bytes(p.read_bytes())
    (bad / f"img_00{bad_index}.png").write_bytes(b"\x89PNG broken")
    capture = Capture(FolderSource(bad)).start()
    frames = consume_all(capture)
    capture.stop()
    assert [read_code(f.image) for f in frames] == [i for i in range(3) if i != bad_index]
    assert capture.stats.skipped == 1
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        f"{bad / f'img_00{bad_index}.png'}: not a readable image (skipped)"]


def test_folder_with_no_readable_image_is_a_source_error(tmp_path):
    (tmp_path / "a.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(SourceError, match="none of its 1 images can be read"):
        Capture(FolderSource(tmp_path)).open()


def test_live_source_drops_oldest_and_counts_every_drop():
    source = EndlessSource(delay=0.001)
    capture = Capture(source, queue_size=2).start()
    assert capture.policy is BufferPolicy.DROP_OLDEST
    got = []
    for _ in range(20):
        time.sleep(0.02)  # a slow consumer
        got.append(capture.get(timeout=1.0))
    capture.stop()
    ids = [f.frame_id for f in got]
    assert ids == sorted(ids)
    assert capture.stats.dropped > 0
    # every frame read was either delivered, dropped, or still in the queue when we stopped
    assert capture.stats.frames - capture.stats.dropped - len(got) in range(0, 3)
    # the consumer always gets recent frames: consecutive gets skip what was dropped
    assert ids[-1] - ids[0] > len(ids)
    assert source.closed


def test_realtime_file_is_paced_and_drops_like_a_camera(clip):
    capture = Capture(FileSource(clip), queue_size=1, realtime=True).start()
    assert capture.live and capture.policy is BufferPolicy.DROP_OLDEST
    started = time.monotonic()
    got = []
    for frame in capture:
        time.sleep(0.07)  # slower than 30 fps
        got.append(frame.frame_id)
    elapsed = time.monotonic() - started
    capture.stop()
    assert elapsed >= 60 / 30.0 * 0.9  # paced at the file's own fps, not as fast as it decodes
    assert capture.stats.dropped > 0
    assert len(got) + capture.stats.dropped == 60


def test_error_in_capture_thread_reaches_consumer_and_source_is_released():
    source = EndlessSource(fail_after=5)
    capture = Capture(source, queue_size=10).start()
    with pytest.raises(SourceError, match="sensor unplugged"):
        consume_all(capture)
    capture.stop()
    assert source.closed and not capture.alive


def test_truncated_file_is_a_clear_error_after_the_frames_it_has(tmp_path):
    whole = write_clip(tmp_path / "whole.avi", 60)
    data = whole.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    capture = Capture(FileSource(cut)).start()
    got = []
    with pytest.raises(SourceError, match=r"cut\.avi: video ends at frame \d+ of 60 \(truncated or corrupt"):
        for frame in capture:
            got.append(frame)
    capture.stop()
    assert 10 < len(got) < 60


def test_file_that_is_not_a_video(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\0" * 5000)
    with pytest.raises(SourceError, match="cannot open as a video"):
        Capture(FileSource(bad)).open()
    with pytest.raises(SourceError, match="no such video file"):
        Capture(FileSource(tmp_path / "missing.mp4")).open()


def test_missing_camera_is_an_error_naming_the_index():
    with pytest.raises(SourceError, match="cannot open camera 9") as err:
        CameraSource(9).open()
    assert err.value.exit_code == 2


# --- stop() returns within 1 s from every source ---------------------------------------------

def _assert_stops_quickly(capture: Capture) -> None:
    started = time.monotonic()
    capture.stop()
    assert time.monotonic() - started < 1.0


def test_stop_when_blocked_on_a_full_queue(clip):
    capture = Capture(FileSource(clip), queue_size=1).start()
    time.sleep(0.3)  # the reader has filled the queue and now waits for room
    assert capture.alive and capture.queue._queue.full()
    _assert_stops_quickly(capture)
    assert not capture.alive and capture.source.cap is None  # joined and released


@pytest.mark.parametrize("kind", ["file", "realtime-file", "folder", "live"])
def test_stop_within_a_second(kind, clip, folder):
    source = {"file": lambda: FileSource(clip), "realtime-file": lambda: FileSource(clip),
              "folder": lambda: FolderSource(folder), "live": lambda: EndlessSource(delay=0.001)}[kind]()
    capture = Capture(source, queue_size=2, realtime=kind == "realtime-file").start()
    capture.get(timeout=2.0)
    _assert_stops_quickly(capture)
    assert not capture.alive


def test_stop_while_a_url_read_hangs():
    """A server that sends one frame and then nothing: the capture thread blocks in read(),
    stop() still returns within a second, and the thread releases the stream when the read times out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    conns = []
    _ok, jpg = cv2.imencode(".jpg", np.full((120, 160, 3), 128, np.uint8))

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conns.append(conn)
            conn.recv(4096)
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n")
            for _ in range(3):
                conn.sendall(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpg)
                             + jpg.tobytes() + b"\r\n")

    threading.Thread(target=serve, daemon=True).start()
    source = UrlSource(f"http://127.0.0.1:{port}/stream.mjpg", reconnect_tries=0, timeout_s=2.0)
    capture = Capture(source, queue_size=8).start()
    assert capture.get(timeout=5.0).image.shape == (120, 160, 3)
    time.sleep(0.5)  # the thread now waits in a read that gets no data
    assert capture.alive
    _assert_stops_quickly(capture)
    capture._thread.join(timeout=5)  # the read times out, the thread sees the stop request and releases
    assert not capture.alive and source.cap is None
    listener.close()
    for c in conns:
        c.close()


def test_url_stream_reconnects_after_the_server_goes_away():
    server = MjpegServer(fps=30).start()
    try:
        source = UrlSource(server.url, reconnect_tries=10, reconnect_delay_s=0.2, reconnect_max_delay_s=0.5,
                           timeout_s=2.0)
        capture = Capture(source, queue_size=2).start()
        assert capture.live
        first = [capture.get(timeout=5.0) for _ in range(10)]
        server.stop()
        time.sleep(1.0)
        server.start()
        after = []
        deadline = time.monotonic() + 20
        while len(after) < 10 and time.monotonic() < deadline:
            try:
                after.append(capture.get(timeout=0.5))
            except queue.Empty:
                pass
        _assert_stops_quickly(capture)
        assert len(first) == 10 and len(after) == 10
        assert source.reconnects >= 1 and capture.stats.reconnects >= 1
        assert capture.stats.gap_s >= 0.8  # the second the server was down (plus reconnect time)
        assert after[0].frame_id > first[-1].frame_id
    finally:
        server.stop()


def test_url_never_reachable_gives_up_after_the_configured_tries():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens here
    source = UrlSource(f"http://127.0.0.1:{port}/x.mjpg", reconnect_tries=2, reconnect_delay_s=0.05)
    with pytest.raises(SourceError, match="cannot open stream after 3 tries"):
        source.open()


def test_source_options_validate():
    from livemask.core.errors import ConfigError

    with pytest.raises(ConfigError, match="queue_size"):
        SourceOptions(queue_size=0)
    assert isinstance(SourceOptions(source="7").make_source(), CameraSource)


# --- a paced file kept for replay (serve's pages) ------------------------------------------------

def test_file_kept_for_replay_waits_for_a_viewer_then_for_a_replay_at_its_end(tmp_path):
    clip = write_clip(tmp_path / "short.mp4", 12, fps=30.0)
    capture = Capture(FileSource(clip), queue_size=30, realtime=True)
    assert capture.keep_for_replay() and capture.playback == "waiting"
    capture.start()
    try:
        with pytest.raises(queue.Empty):  # no viewer yet: not a frame
            capture.get(timeout=0.4)
        capture.watch()
        first = [capture.get(timeout=2.0) for _ in range(12)]
        assert [read_code(f.image) for f in first] == list(range(12))
        deadline = time.monotonic() + 5
        while capture.playback != "ended" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert capture.playback == "ended" and capture.alive  # at its end it waits: no end marker
        with pytest.raises(queue.Empty):
            capture.get(timeout=0.3)
        assert capture.replay()
        assert not capture.replay()  # a second click while it restarts does nothing
        again = [capture.get(timeout=2.0) for _ in range(12)]
        assert [read_code(f.image) for f in again] == list(range(12))  # from its start again
        assert [f.frame_id for f in again] == list(range(12, 24))  # frame ids go on
        assert capture.plays == 2 and capture.stats.dropped == 0
        deadline = time.monotonic() + 5
        while capture.playback != "ended" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert capture.playback == "ended" and capture.plays == 2  # ended again, not replayed twice
        with pytest.raises(queue.Empty):
            capture.get(timeout=0.3)
    finally:
        _assert_stops_quickly(capture)
    assert not capture.alive


def test_only_a_paced_file_can_be_kept_for_replay(clip, folder):
    assert not Capture(FileSource(clip), queue_size=2).keep_for_replay()  # not paced: a file run reads it all
    assert not Capture(FolderSource(folder), queue_size=2, realtime=True).keep_for_replay()
    assert not Capture(EndlessSource(), queue_size=2).keep_for_replay()
    capture = Capture(FileSource(clip), queue_size=2, realtime=True)
    assert not capture.replay()  # not kept: nothing to replay
