"""The size of the X screen a window opens on (for a full-screen window without a window manager)."""

from __future__ import annotations

import ctypes
import ctypes.util


def screen_size() -> tuple[int, int] | None:
    """(width, height) of the default screen of ``$DISPLAY``, read with libX11; None when there is no
    X display or no libX11 (Wayland, headless)."""
    name = ctypes.util.find_library("X11")
    if not name:
        return None
    try:
        x11 = ctypes.CDLL(name)
    except OSError:
        return None
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XDefaultScreen.argtypes = [ctypes.c_void_p]
    x11.XDisplayWidth.argtypes = x11.XDisplayHeight.argtypes = [ctypes.c_void_p, ctypes.c_int]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    display = x11.XOpenDisplay(None)
    if not display:
        return None
    try:
        screen = x11.XDefaultScreen(display)
        size = int(x11.XDisplayWidth(display, screen)), int(x11.XDisplayHeight(display, screen))
    finally:
        x11.XCloseDisplay(display)
    return size if size[0] > 0 and size[1] > 0 else None
