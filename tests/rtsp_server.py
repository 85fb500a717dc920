"""A real RTSP server for tests and benchmarks: GStreamer's RTSP server serving one H.264 MP4 at rtsp://127.0.0.1:PORT/cam.

Run by Debian's own Python (its GObject bindings are not importable from the project's virtualenv)::

    /usr/bin/python3 tests/rtsp_server.py CLIP.mp4 [--port N]

It listens on 127.0.0.1 only, on ``--port`` (0: a free port it picks) and prints one line
``READY rtsp://127.0.0.1:PORT/cam`` when it accepts connections. The media is shared by every
client (``set_shared``), so a second reader sees the same stream; the stream ends with the clip (make
the clip as long as the test needs, e.g. with ``ffmpeg -stream_loop``). SIGTERM or SIGINT stops it.
Debian packages: gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-good/-bad/-ugly gstreamer1.0-libav.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", help="an H.264 MP4 file")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    Gst.init(None)
    port = args.port or free_port()
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    location = args.clip.replace("\\", "\\\\").replace('"', '\\"')
    factory.set_launch(f'( filesrc location="{location}" ! qtdemux ! h264parse '
                       "! rtph264pay name=pay0 pt=96 config-interval=1 )")
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{port}", file=sys.stderr, flush=True)
        return 1
    main_loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, main_loop.quit)
    print(f"READY rtsp://127.0.0.1:{port}/cam", flush=True)
    main_loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
