"""The kiosk's start screen before the heavy imports: ``livemask run --kiosk`` shows "Starting..." within
about half a second of launch (docs/first-hour.md).

:func:`early_start_screen` is the first thing the command line does. For ``run`` in kiosk mode with a
reachable X display it imports only numpy, OpenCV and the config reader, reads the ``kiosk`` and ``run``
sections of the config file (with their ``--set`` overrides), and opens the kiosk's full-screen window
with "Starting..." (:class:`~livemask.sinks.kiosk.StartScreen`). The command modules and the composition
root are then imported on a helper thread while the window stays painted, and the run takes the same
window over (:func:`take`) for the rest of the start-up (models, source).

Anything unusual shows nothing here: no display or one that cannot be reached, ``--headless``, ``--help``,
cameras, a config file it cannot read or a kiosk or run value that is refused. The normal path then
decides, as before: a bad setting is one line and exit 2 before any window opens. A setting only the
normal path checks (a missing ``--source`` file, an output path, alerts) still ends the run with one
line and exit 2, while the start screen is up; the window closes as the process exits.
"""

from __future__ import annotations

import os

_early = None  # the StartScreen opened by early_start_screen, until the run takes it


def _flag_values(argv: list[str], flag: str) -> list[str]:
    """The values given to ``flag`` in ``argv`` (``--flag VALUE`` and ``--flag=VALUE``)."""
    values = []
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            values.append(argv[i + 1])
        elif arg.startswith(flag + "="):
            values.append(arg[len(flag) + 1:])
    return values


def _display_reachable() -> bool:
    if not os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return False
    if os.environ.get("QT_QPA_PLATFORM", "xcb") != "xcb":
        return False
    from livemask.sinks.x11 import screen_size

    return screen_size() is not None  # a refused X server: the normal path says so (Qt would abort)


def kiosk_settings(argv: list[str]):
    """(window title, :class:`~livemask.sinks.kiosk.KioskOptions`) when ``argv`` (after the program name) is
    a kiosk run with a window, from the config's ``kiosk`` and ``run`` sections and their ``--set``
    overrides; None for anything else or anything this cannot read (the normal path decides)."""
    if not argv or argv[0] != "run" or any(a in ("-h", "--help", "--headless") for a in argv):
        return None
    if any(a == "--camera" or a.startswith("--camera=") for a in argv):
        return None
    from livemask.config import DEFAULT_CONFIG, parse_set
    from livemask.core import safeyaml
    from livemask.sinks.kiosk import KioskOptions
    from livemask.sinks.run_outputs import RunOptions

    try:
        paths = _flag_values(argv, "--config")
        raw = safeyaml.load_file(paths[-1] if paths else DEFAULT_CONFIG) or {}
        sections = {name: dict(raw.get(name) or {}) for name in ("kiosk", "run")}
        for key, value in parse_set(_flag_values(argv, "--set")).items():
            section, _, name = key.partition(".")
            if section in sections:
                sections[section][name] = value
        if "--kiosk" in argv:
            sections["kiosk"]["enabled"] = True
        kiosk, run = KioskOptions(**sections["kiosk"]), RunOptions(**sections["run"])
    except Exception:  # any doubt: no early screen, the normal path reports it
        return None
    if not kiosk.enabled or run.headless:
        return None
    return run.window_name, kiosk


def early_start_screen(argv: list[str], modules: tuple[str, ...] = ()):
    """The kiosk's start screen, opened now when ``argv`` is a kiosk run with a window (else None), with
    ``modules`` (the command line's) imported meanwhile (module docstring)."""
    global _early
    settings = kiosk_settings(argv)
    if settings is None or not _display_reachable():
        return None
    from livemask.sinks.kiosk import StartScreen

    _early = StartScreen(*settings)
    _early.wait_for(lambda: _import_quietly(modules))
    return _early


def _import_quietly(modules: tuple[str, ...]) -> None:
    """``modules`` imported while the start screen stays painted; an error here is left for the normal path
    to report (it imports them again)."""
    import importlib

    try:
        for name in modules:
            importlib.import_module(name)
    except Exception:  # raised again, as one line, where the command line imports it
        pass


def take(title: str, options):
    """The early start screen if it shows ``title`` with ``options`` (the run's own, checked), else None (a
    screen opened with other settings is closed first)."""
    global _early
    screen, _early = _early, None
    if screen is None:
        return None
    if screen.title == title and screen.renderer.options == options:
        return screen
    screen.close()
    return None
