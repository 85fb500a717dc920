"""``config.yaml``: one section per component, each key a constructor argument.

Sections are checked against the signature of the class they configure, so a key
that the class does not take is an error naming the key, the section and the file.
Values are checked against the types and ranges the class declares
(:mod:`livemask.core.params`), not guessed from defaults, so the error names section and
key from one place. CLI flags override config values through :func:`apply_overrides`.

Which class a section configures is not known here: the composition root
(:mod:`livemask.apps.compose`) hands in a :class:`Schema`, so this module imports
nothing above ``livemask.core``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from livemask.core import safeyaml
from livemask.core.errors import ConfigError
from livemask.core.params import check_arguments, declared_parameters

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config.yaml"


class Schema:
    """Which callable each section configures; filled by the composition root (``livemask.apps.compose``).

    This module imports nothing above ``livemask.core``: the classes are handed in, not looked up.
    """

    def __init__(self) -> None:
        self.sections: dict[str, Callable[..., Any]] = {}  # section -> callable taking its keys
        self.choices: dict[str, dict[str, Callable[..., Any]]] = {}  # section -> {"name": callable}
        self.declared: dict[str, dict[str, Any]] = {}  # section -> {key: type hint} the code does not declare
        self.keyed: set[str] = set()  # sections of name -> settings (``cameras``): one target per name

    def register(self, section: str, target: Callable[..., Any] | dict[str, Callable[..., Any]],
                 declared: dict[str, Any] | None = None, keyed: bool = False) -> Schema:
        """``section`` configures ``target`` (or, for a dict, the class its ``name`` key picks).

        ``declared``: type hints (``Annotated[float, Range(...)]``) for arguments whose code does not
        declare them; they win over the signature's hints.
        ``keyed``: the section maps names to settings; each name's settings are checked against ``target``,
        which is then called once as ``target(name=NAME, **settings)`` so that its own checks (the name's
        pattern, required keys) run at load time too.
        """
        if keyed:
            self.keyed.add(section)
        if isinstance(target, dict):
            self.choices[section] = dict(target)
        else:
            self.sections[section] = target
        self.declared[section] = dict(declared or {})
        return self

    @property
    def names(self) -> set[str]:
        return set(self.sections) | set(self.choices)

    def target(self, section: str, values: dict[str, Any]) -> Callable[..., Any]:
        if section in self.choices:
            choices = self.choices[section]
            return choices[values.get("name", next(iter(choices)))]
        return self.sections[section]


class Config(dict):
    """A validated config: ``{section: {key: value}}``, carrying the :class:`Schema` it was checked against."""

    def __init__(self, sections: dict[str, dict[str, Any]], schema: Schema):
        super().__init__(sections)
        self.schema = schema


def _validate_section(schema: Schema, name: str, values: Any, origin: str) -> dict[str, Any]:
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{origin}: section '{name}' must be a mapping, got {type(values).__name__}")
    if name in schema.keyed:
        return _validate_keyed(schema, name, values, origin)
    if name in schema.choices:
        choices = schema.choices[name]
        kind = values.get("name", next(iter(choices)))
        if kind not in choices:
            raise ConfigError(f"{origin}: {name}.name: unknown value {kind!r} (choose from {', '.join(choices)})")
    target = schema.target(name, values)
    params = declared_parameters(target, schema.declared.get(name))
    allowed = set(params) | ({"name"} if name in schema.choices else set())
    for key in values:
        if key not in allowed:
            raise ConfigError(
                f"{origin}: unknown key '{name}.{key}' (allowed: {', '.join(sorted(allowed))})"
            )
    rest = {k: v for k, v in values.items() if k != "name"}
    out = {"name": values["name"]} if "name" in values else {}
    out.update(check_arguments(target, rest, f"{origin}: {name}", schema.declared.get(name)))
    return out


def _validate_keyed(schema: Schema, name: str, values: dict[str, Any], origin: str) -> dict[str, dict[str, Any]]:
    """A name -> settings section: every name's settings checked against the section's target."""
    target = schema.sections[name]
    declared = schema.declared.get(name)
    allowed = set(declared_parameters(target, declared)) - {"name"}
    out: dict[str, dict[str, Any]] = {}
    for key, item in values.items():
        if not isinstance(key, str):
            raise ConfigError(f"{origin}: {name}: the name {key!r} is read by YAML as a {type(key).__name__}, "
                              "not a name: quote it")
        if item is None:
            item = {}
        if not isinstance(item, dict):
            raise ConfigError(f"{origin}: {name}.{key} must be a mapping of settings, got {type(item).__name__}")
        for k in item:
            if k not in allowed:
                raise ConfigError(f"{origin}: unknown key '{name}.{key}.{k}' (allowed: {', '.join(sorted(allowed))})")
        checked = check_arguments(target, item, f"{origin}: {name}.{key}", declared)
        try:
            target(name=key, **checked)  # the target's own checks, once, at load time
        except ConfigError as err:
            raise ConfigError(f"{origin}: {err}") from None
        out[key] = checked
    return out


def load_config(path: str | Path | None, schema: Schema) -> Config:
    """Read and validate a config file against ``schema``; missing sections are empty (constructor defaults)."""
    path = Path(path) if path else DEFAULT_CONFIG
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    raw = safeyaml.load_file(path) or {}  # bounded: alias bombs, depth, duplicate keys, size, encoding
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    known = schema.names
    for section in raw:
        if section not in known:
            raise ConfigError(f"{path}: unknown section '{section}' (allowed: {', '.join(sorted(known))})")
    return Config({s: _validate_section(schema, s, raw.get(s), str(path)) for s in sorted(known)}, schema)


def apply_overrides(config: Config, overrides: dict[str, Any], origin: str = "command line") -> Config:
    """Return a copy of ``config`` with ``{"section.key": value}`` overrides (None values skipped)."""
    schema = config.schema
    out = Config(copy.deepcopy(dict(config)), schema)
    # a new "name" picks another class: the old section's keys belong to the old class
    ordered = sorted(overrides.items(), key=lambda item: not item[0].endswith(".name"))
    for dotted, value in ordered:
        if value is None:
            continue
        section, _, key = dotted.partition(".")
        if section not in out or not key:
            raise ConfigError(f"{origin}: unknown setting '{dotted}'")
        if section in schema.keyed and "." in key:  # cameras.NAME.KEY: one key of one camera
            key, _, sub = key.partition(".")
            value = {**out[section].get(key, {}), sub: value}
        base = out[section]
        if key == "name" and section in schema.choices and value != base.get("name"):
            base = {}
        out[section] = _validate_section(schema, section, dict(base, **{key: value}), origin)
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


def build_keyed(config: Config, section: str) -> dict[str, Any]:
    """A name -> settings section (``Schema.register(..., keyed=True)``) as {name: object}, in config order."""
    target = config.schema.sections[section]
    return {name: target(name=name, **values) for name, values in config.get(section, {}).items()}


def build(config: Config, section: str, **extra: Any) -> Any:
    """Construct the object a section configures; ``extra`` arguments are checked like config keys."""
    schema = config.schema
    values = dict(config.get(section, {}))
    values.pop("name", None)
    target = schema.target(section, config.get(section, {}))
    values.update(check_arguments(target, extra, section, schema.declared.get(section)))
    return target(**values)
