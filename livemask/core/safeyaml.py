"""A bounded YAML reader for config files and ``--set`` values.

On top of ``yaml.SafeLoader`` (no Python tags, no arbitrary objects) it refuses, with one
short line naming the line of the file:

* documents whose *expanded* size is over :data:`MAX_NODES` nodes, counting every alias as
  the full copy it stands for (the "billion laughs" alias bomb is caught while composing,
  before anything large exists), and recursive aliases;
* nesting deeper than :data:`MAX_DEPTH` (a 50 000-deep ``[[[[...`` would otherwise end in
  RecursionError);
* duplicate keys in a mapping (YAML says keys are unique; PyYAML silently keeps the last);
* files over :data:`MAX_BYTES`, text that is not UTF-8, and scalars Python cannot hold
  (an integer of 100 000 digits).

Every value quoted in an error goes through :func:`quote`, so an error line stays short.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from livemask.core.errors import ConfigError

MAX_BYTES = 1 << 20  # a config file is a few kB; 1 MiB is far beyond any real one
MAX_DEPTH = 32  # config.yaml nests 2 deep
MAX_NODES = 100_000  # expanded nodes (aliases counted in full); long strings count by length
QUOTE_CHARS = 60


def quote(value: Any, limit: int = QUOTE_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters, built without expanding a large value."""
    if isinstance(value, str):
        text = repr(value[: limit + 1])
    elif isinstance(value, (dict, list, tuple, set)):
        text = f"<{type(value).__name__} of {len(value)}>"
    else:
        text = repr(value)
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that budgets composition (depth, expanded size) and refuses duplicate keys."""

    def __init__(self, stream, origin: str):
        super().__init__(stream)
        self.origin = origin
        self._depth = 0
        self._sizes: dict[int, int] = {}  # id(node) -> expanded size, once the node is complete

    def _fail(self, mark, message: str) -> ConfigError:
        where = f" (line {mark.line + 1})" if mark is not None else ""
        return ConfigError(f"{self.origin}: {message}{where}")

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = self.anchors.get(event.anchor)
            if node is not None and id(node) not in self._sizes:
                raise self._fail(event.start_mark, f"alias *{quote(event.anchor, 40)[1:-1]} refers to itself")
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise self._fail(self.peek_event().start_mark, f"nested more than {MAX_DEPTH} levels deep")
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if isinstance(node, yaml.ScalarNode):
            size = 1 + len(node.value) // 64
        elif isinstance(node, yaml.SequenceNode):
            size = 1 + sum(self._sizes.get(id(child), 1) for child in node.value)
        else:
            size = 1 + sum(self._sizes.get(id(k), 1) + self._sizes.get(id(v), 1) for k, v in node.value)
        if size > MAX_NODES:
            raise self._fail(node.start_mark, f"expands to more than {MAX_NODES} values (too many aliases)")
        self._sizes[id(node)] = size
        return node

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _value in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    continue  # SafeConstructor reports unhashable keys itself
                if key in seen:
                    raise self._fail(key_node.start_mark,
                                     f"duplicate key {quote(key)} (first at line {seen[key] + 1})")
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def loads(text: str, origin: str) -> Any:
    """Parse one YAML document from ``text``; any problem is a one-line :class:`ConfigError`."""
    loader = None
    try:
        loader = _BoundedLoader(text, origin)  # its reader refuses control characters here already
        return loader.get_single_data()
    except ConfigError:
        raise
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        problem = err.problem or err.context or "syntax error"
        where = f" (line {mark.line + 1})" if mark is not None else ""
        column = f" at column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{origin}: not valid YAML{where}: {quote(problem, 90)[1:-1]}{column}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{origin}: not valid YAML ({str(err).splitlines()[0][:120] if str(err) else ''})") from None
    except (ValueError, OverflowError, RecursionError, MemoryError) as err:
        # e.g. an integer with more digits than Python converts; never a traceback
        raise ConfigError(f"{origin}: value cannot be read ({type(err).__name__}: {str(err)[:100]})") from None
    finally:
        if loader is not None:
            loader.dispose()


def load_file(path: str | Path) -> Any:
    """Read and parse a YAML file with :func:`loads`; size and encoding are checked first."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config file ({err.strerror or err})") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{path}: config file larger than {MAX_BYTES // 1024} KiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start}, line {line})") from None
    if "\x00" in text:
        raise ConfigError(f"{path}: not a text file (holds NUL bytes)")
    return loads(text, str(path))
