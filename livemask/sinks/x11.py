"""The X server through libxcb: the screen's size, whether a window still exists, and finishing a run
when the X connection is lost.

Everything here that touches OpenCV's windows runs on the display (main) thread.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
import time
from collections.abc import Callable

log = logging.getLogger(__name__)



# -- the X server -------------------------------------------------------------------------------
class _ScreenIterator(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("rem", ctypes.c_int), ("index", ctypes.c_int)]


_XCB_ERRORS = {1: "connection refused or broken", 2: "extension not supported", 3: "out of memory",
               4: "request too long", 5: "cannot parse the display name", 6: "no such screen",
               7: "file descriptor passing failed"}
_screen: tuple[int, int] | None = None


def _libxcb():
    name = ctypes.util.find_library("xcb") or "libxcb.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    lib.xcb_connect.restype = ctypes.c_void_p
    lib.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
    lib.xcb_connection_has_error.restype = ctypes.c_int
    lib.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    lib.xcb_get_setup.restype = ctypes.c_void_p
    lib.xcb_get_setup.argtypes = [ctypes.c_void_p]
    lib.xcb_setup_roots_iterator.restype = _ScreenIterator
    lib.xcb_setup_roots_iterator.argtypes = [ctypes.c_void_p]
    lib.xcb_screen_next.restype = None
    lib.xcb_screen_next.argtypes = [ctypes.POINTER(_ScreenIterator)]
    lib.xcb_disconnect.restype = None
    lib.xcb_disconnect.argtypes = [ctypes.c_void_p]
    return lib


def probe_x_display(display: str, attempts: int = 3, wait_s: float = 0.5) -> tuple[int, int] | None:
    """Connect to the X server at ``display`` as Qt will (libxcb, with the same authorisation) and
    return the default screen's size; raises ``ConnectionError`` with a short reason when the server
    refuses or is not there. None when libxcb is not installed (nothing checked).

    A refused or broken connection is tried ``attempts`` times, ``wait_s`` apart: an X server resets when
    its last client leaves (unless started with ``-noreset``), and refuses connections while it does; on
    a busy machine that takes long enough to be hit (docs/known-issues.md)."""
    for attempt in range(attempts):
        try:
            return _probe_once(display)
        except ConnectionError as err:
            if attempt + 1 == attempts or str(err) != _XCB_ERRORS[1]:
                raise
            time.sleep(wait_s)
    return None


def _probe_once(display: str) -> tuple[int, int] | None:
    global _screen
    xcb = _libxcb()
    if xcb is None:
        return None
    number = ctypes.c_int(0)
    conn = xcb.xcb_connect(display.encode(), ctypes.byref(number))
    try:
        error = xcb.xcb_connection_has_error(conn) if conn else 1
        if error:
            raise ConnectionError(_XCB_ERRORS.get(error, f"xcb error {error}"))
        screens = xcb.xcb_setup_roots_iterator(xcb.xcb_get_setup(conn))
        for _ in range(max(0, number.value)):
            if screens.rem <= 1:
                break
            xcb.xcb_screen_next(ctypes.byref(screens))
        raw = ctypes.string_at(screens.data, 24)  # xcb_screen_t: five CARD32, then width, height (CARD16)
        _screen = int.from_bytes(raw[20:22], sys.byteorder), int.from_bytes(raw[22:24], sys.byteorder)
        return _screen
    finally:
        if conn:
            xcb.xcb_disconnect(conn)


def screen_size() -> tuple[int, int] | None:
    """The X screen's size in pixels (probed once), or None when unknown (no X, no libxcb, Wayland)."""
    if _screen is None and os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        try:
            probe_x_display(os.environ["DISPLAY"])
        except ConnectionError:
            return None
    return _screen


class _Cookie(ctypes.Structure):
    _fields_ = [("sequence", ctypes.c_uint)]


class XWindows:
    """A second, read-only connection to the X server, to tell whether this process still has its
    top-level window named ``name``: a window destroyed by another client (``xdotool windowclose``,
    some window managers) is gone from X while Qt goes on reporting it as visible.

    ``gone()`` is one round trip while the window is there; the window is looked up again (by name
    and ``_NET_WM_PID``) when its id disappears, since Qt may replace a window's X id."""

    def __init__(self, name: str, display: str | None = None):
        self.name = name.encode()
        self.pid = os.getpid()
        self._xcb = xcb = _libxcb()
        self._libc = ctypes.CDLL(None)
        self._libc.free.argtypes = [ctypes.c_void_p]
        self._conn = None
        self._wid: int | None = None
        self.seen = False
        if xcb is None:
            return
        for fn, args in (("xcb_intern_atom", [ctypes.c_void_p, ctypes.c_uint8, ctypes.c_uint16, ctypes.c_char_p]),
                         ("xcb_query_tree", [ctypes.c_void_p, ctypes.c_uint32]),
                         ("xcb_get_property", [ctypes.c_void_p, ctypes.c_uint8, ctypes.c_uint32, ctypes.c_uint32,
                                               ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32]),
                         ("xcb_get_window_attributes", [ctypes.c_void_p, ctypes.c_uint32]),
                         ("xcb_get_image", [ctypes.c_void_p, ctypes.c_uint8, ctypes.c_uint32, ctypes.c_int16,
                                            ctypes.c_int16, ctypes.c_uint16, ctypes.c_uint16, ctypes.c_uint32]),
                         ("xcb_unmap_window", [ctypes.c_void_p, ctypes.c_uint32]),
                         ("xcb_map_window", [ctypes.c_void_p, ctypes.c_uint32])):
            getattr(xcb, fn).restype = _Cookie
            getattr(xcb, fn).argtypes = args
        for fn in ("xcb_intern_atom_reply", "xcb_query_tree_reply", "xcb_get_property_reply",
                   "xcb_get_window_attributes_reply", "xcb_get_image_reply"):
            getattr(xcb, fn).restype = ctypes.c_void_p
            getattr(xcb, fn).argtypes = [ctypes.c_void_p, _Cookie, ctypes.POINTER(ctypes.c_void_p)]
        for fn, restype in (("xcb_query_tree_children", ctypes.POINTER(ctypes.c_uint32)),
                            ("xcb_query_tree_children_length", ctypes.c_int),
                            ("xcb_get_property_value", ctypes.c_void_p),
                            ("xcb_get_property_value_length", ctypes.c_int),
                            ("xcb_get_image_data", ctypes.c_void_p),
                            ("xcb_get_image_data_length", ctypes.c_int),
                            ("xcb_flush", ctypes.c_int)):  # each takes one pointer (a reply, the connection)
            getattr(xcb, fn).restype = restype
            getattr(xcb, fn).argtypes = [ctypes.c_void_p]
        number = ctypes.c_int(0)
        conn = xcb.xcb_connect((display or os.environ.get("DISPLAY", "")).encode() or None, ctypes.byref(number))
        if not conn or xcb.xcb_connection_has_error(conn):
            if conn:
                xcb.xcb_disconnect(conn)
            return
        self._conn = conn
        self._root = int.from_bytes(ctypes.string_at(xcb.xcb_setup_roots_iterator(xcb.xcb_get_setup(conn)).data, 4),
                                    sys.byteorder)
        self._pid_atom = self._atom(b"_NET_WM_PID")

    def _reply(self, fn: str, cookie) -> int | None:
        error = ctypes.c_void_p()
        reply = getattr(self._xcb, fn + "_reply")(self._conn, cookie, ctypes.byref(error))
        if error.value:
            self._libc.free(error)
        return reply or None

    def _atom(self, name: bytes) -> int:
        reply = self._reply("xcb_intern_atom", self._xcb.xcb_intern_atom(self._conn, 0, len(name), name))
        if reply is None:
            return 0
        atom = int.from_bytes(ctypes.string_at(reply + 8, 4), sys.byteorder)
        self._libc.free(reply)
        return atom

    def _property(self, window: int, atom: int) -> bytes | None:
        reply = self._reply("xcb_get_property", self._xcb.xcb_get_property(self._conn, 0, window, atom, 0, 0, 256))
        if reply is None:
            return None
        xcb = self._xcb
        value = ctypes.string_at(xcb.xcb_get_property_value(reply), xcb.xcb_get_property_value_length(reply))
        self._libc.free(reply)
        return value

    def _children(self, window: int) -> list[int]:
        reply = self._reply("xcb_query_tree", self._xcb.xcb_query_tree(self._conn, window))
        if reply is None:
            return []
        n = self._xcb.xcb_query_tree_children_length(reply)
        children = list(self._xcb.xcb_query_tree_children(reply)[:n])
        self._libc.free(reply)
        return children

    def find(self) -> int | None:
        """The id of this process's window named ``name`` (top level, or one level under a window manager's frame)."""
        if self._conn is None:
            return None
        pid = self.pid.to_bytes(4, sys.byteorder)
        for top in self._children(self._root):
            for window in (top, *self._children(top)):
                if self._property(window, 39) == self.name and self._property(window, self._pid_atom) == pid:
                    return window  # 39: WM_NAME
        return None

    def gone(self) -> bool:
        """True once the window was seen and no window of that name is left to this process."""
        if self._conn is None:
            return False
        if self._wid is not None:
            reply = self._reply("xcb_get_window_attributes",
                                self._xcb.xcb_get_window_attributes(self._conn, self._wid))
            if reply is not None:
                self._libc.free(reply)
                return False
        self._wid = self.find()
        if self._wid is not None:
            self.seen = True
            return False
        return self.seen

    def pixels(self, width: int, height: int):
        """The window's top-left ``width`` x ``height`` pixels as the X server has them (BGR, uint8), or None
        (no window, another depth than 24/32 bits, an error such as a window smaller than that)."""
        import numpy as np

        wid = self._wid if self._wid is not None else self.find()
        if self._conn is None or wid is None:
            return None
        reply = self._reply("xcb_get_image", self._xcb.xcb_get_image(self._conn, 2, wid, 0, 0, width, height,
                                                                     0xFFFFFFFF))  # 2: ZPixmap
        if reply is None:
            return None
        try:
            size = self._xcb.xcb_get_image_data_length(reply)
            if size != width * height * 4:
                return None
            data = ctypes.string_at(self._xcb.xcb_get_image_data(reply), size)
        finally:
            self._libc.free(reply)
        return np.frombuffer(data, np.uint8).reshape(height, width, 4)[:, :, :3].copy()

    def remap(self) -> bool:
        """Unmap and map the window again (a real UnmapNotify and MapNotify for its client); False when
        there is no window."""
        wid = self._wid if self._wid is not None else self.find()
        if self._conn is None or wid is None:
            return False
        self._xcb.xcb_unmap_window(self._conn, wid)
        self._xcb.xcb_map_window(self._conn, wid)
        self._xcb.xcb_flush(self._conn)
        return True

    def close(self) -> None:
        if self._conn is not None:
            self._xcb.xcb_disconnect(self._conn)
            self._conn = None


# -- a lost X connection ------------------------------------------------------------------------
_hooks: list = []  # the C callbacks must stay alive as long as the process


def on_lost_connection(callback: Callable[[], int]) -> Callable[[], None]:
    """Run ``callback`` when the process is ended from C by ``exit()`` (Qt's X11 plugin does so, with
    status 1, from inside a window call when the X connection breaks: ``xkill``, the server gone),
    then leave at once with the status it returns (stdio flushed; the rest of the C exit handlers,
    Qt's, are skipped). Returns a function that disarms it.

    The callback runs on the thread that called ``exit()`` (the display thread) while that thread is
    inside the window call, so it must not touch a window. A C exit handler cannot be removed, and
    one that calls into Python after the interpreter has shut down crashes: disarming therefore also
    registers C's own ``_exit`` as a later exit handler (run first), so a normal interpreter exit after
    the run leaves with its status before reaching this one (skipping the C exit handlers registered
    before, as livemask's entry point, which ends with ``os._exit``, does anyway).
    """
    armed = [True]

    def fire(status, _arg):
        if not armed[0]:
            return
        armed[0] = False
        code = 1
        try:
            code = int(callback())
        except BaseException:  # the process is leaving anyway: keep its outputs' state as it is
            log.debug("lost-connection handler failed", exc_info=True)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)

    def disarm() -> None:
        if not armed[0]:
            return
        armed[0] = False
        try:
            register(ctypes.cast(libc._exit, ctypes.c_void_p), None)  # _exit(status): on_exit passes the status
        except (OSError, AttributeError):
            pass

    thunk = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p)(fire)
    try:
        libc = ctypes.CDLL(None)
        register = libc.on_exit  # glibc; exit() calls it with the status
    except (OSError, AttributeError):
        log.debug("on_exit is not available: a lost X connection ends the process as Qt does")
        return lambda: None
    register.restype = ctypes.c_int
    register.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    if register(ctypes.cast(thunk, ctypes.c_void_p), None) != 0:
        return lambda: None
    _hooks.append(thunk)
    return disarm
