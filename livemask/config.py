"""``config.yaml``: one section per component, each key a constructor argument.

Sections are checked against the signature of the class they configure, so a key
that the class does not take is an error naming the key, the section and the file,
and a value of the wrong type is an error naming the expected type. CLI flags
override config values through :func:`apply_overrides`.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from livemask.core import safeyaml
from livemask.core.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config.yaml"

# section -> callable whose keyword arguments the section holds; filled by register()
_SECTIONS: dict[str, Callable[..., Any]] = {}
# section -> {"key": callable} for sections that pick a class by a "name" key
_CHOICES: dict[str, dict[str, Callable[..., Any]]] = {}


def register(section: str, target: Callable[..., Any] | dict[str, Callable[..., Any]]) -> None:
    """Declare that ``section`` configures ``target`` (or, for a dict, the class its ``name`` picks)."""
    if isinstance(target, dict):
        _CHOICES[section] = target
    else:
        _SECTIONS[section] = target


def _parameters(target: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    params = inspect.signature(target).parameters
    return {k: p for k, p in params.items() if k != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _check_type(where: str, value: Any, default: Any) -> Any:
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, (list, tuple))
        value = type(default)(value) if ok else value
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ConfigError(f"{where}: expected {type(default).__name__}, got {type(value).__name__} {value!r}")
    return value


def _validate_section(name: str, values: Any, origin: str) -> dict[str, Any]:
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{origin}: section '{name}' must be a mapping, got {type(values).__name__}")
    if name in _CHOICES:
        choices = _CHOICES[name]
        kind = values.get("name", next(iter(choices)))
        if kind not in choices:
            raise ConfigError(f"{origin}: {name}.name: unknown value {kind!r} (choose from {', '.join(choices)})")
        target = choices[kind]
        allowed = {"name"} | set(_parameters(target))
    else:
        target = _SECTIONS[name]
        allowed = set(_parameters(target))
    params = _parameters(target)
    out = {}
    for key, value in values.items():
        if key not in allowed:
            raise ConfigError(
                f"{origin}: unknown key '{name}.{key}' (allowed: {', '.join(sorted(allowed))})"
            )
        if key == "name":
            out[key] = value
            continue
        default = params[key].default
        if default is inspect.Parameter.empty:
            default = None
        out[key] = _check_type(f"{origin}: {name}.{key}", value, default)
    return out


def load_config(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Read and validate a config file; missing sections are empty (constructor defaults)."""
    _ensure_registered()
    path = Path(path) if path else DEFAULT_CONFIG
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    raw = safeyaml.load_file(path) or {}  # bounded: alias bombs, depth, duplicate keys, size, encoding
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    known = set(_SECTIONS) | set(_CHOICES)
    for section in raw:
        if section not in known:
            raise ConfigError(f"{path}: unknown section '{section}' (allowed: {', '.join(sorted(known))})")
    return {s: _validate_section(s, raw.get(s), str(path)) for s in sorted(known)}


def apply_overrides(config: dict[str, dict[str, Any]], overrides: dict[str, Any], origin: str = "command line") -> dict:
    """Return a copy of ``config`` with ``{"section.key": value}`` overrides (None values skipped)."""
    out = copy.deepcopy(config)
    # a new "name" picks another class: the old section's keys belong to the old class
    ordered = sorted(overrides.items(), key=lambda item: not item[0].endswith(".name"))
    for dotted, value in ordered:
        if value is None:
            continue
        section, _, key = dotted.partition(".")
        if section not in out or not key:
            raise ConfigError(f"{origin}: unknown setting '{dotted}'")
        base = out[section]
        if key == "name" and section in _CHOICES and value != base.get("name"):
            base = {}
        out[section] = _validate_section(section, dict(base, **{key: value}), origin)
    return out


def parse_set(items: list[str]) -> dict[str, Any]:
    """``--set section.key=value`` items, values parsed as YAML scalars."""
    out = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {safeyaml.quote(item)}: expected section.key=value")
        if not text.strip():
            raise ConfigError(f"--set {safeyaml.quote(item)}: empty value (leave the option out to keep the "
                              "config value)")
        out[key.strip()] = safeyaml.loads(text, f"--set {safeyaml.quote(key.strip())}")
    return out


def build(config: dict[str, dict[str, Any]], section: str, **extra: Any) -> Any:
    """Construct the object a section configures."""
    values = dict(config.get(section, {}))
    values.update(extra)
    if section in _CHOICES:
        choices = _CHOICES[section]
        target = choices[values.pop("name", next(iter(choices)))]
    else:
        target = _SECTIONS[section]
    return target(**values)


def _ensure_registered() -> None:
    """Import the modules that own the sections (they call :func:`register`)."""
    import livemask.apps.sections  # noqa: F401
