"""feature_store.yaml read safely: text only, bounded nesting and bounded alias use.

PyYAML's safe loader still accepts a "billion laughs" document (a few lines of aliases that expand
to millions of values, which hung `repast config show`) and recurses until the interpreter gives
up on deeply nested brackets. A configuration needs neither, so both are refused with a one-line
ConfigError naming the file (aliases are counted as expanded), as is a file that is not UTF-8 text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.events import AliasEvent, CollectionStartEvent
from yaml.nodes import MappingNode, Node, SequenceNode

from repast.errors import ConfigError

MAX_DEPTH = 50  # nested mappings/lists; real configurations use fewer than 10
MAX_VALUES = 100_000  # values once every alias is expanded


class _BoundedLoader(yaml.SafeLoader):
    def __init__(self, stream: str, source: str) -> None:
        super().__init__(stream)
        self.source = source
        self.depth = 0
        self.sizes: dict[int, int] = {}  # id(node) -> values under it, aliases expanded

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(AliasEvent):
            return Composer.compose_node(self, parent, index)  # an anchored node, sized already
        nested = self.check_event(CollectionStartEvent)
        if nested:
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ConfigError(f"{self.source}: YAML nested more than {MAX_DEPTH} levels deep")
        try:
            node = Composer.compose_node(self, parent, index)
        finally:
            if nested:
                self.depth -= 1
        self.sizes[id(node)] = size = self._expanded_size(node)
        if size > MAX_VALUES:
            raise ConfigError(f"{self.source}: YAML aliases (*name) expand to more than {MAX_VALUES:,} values; "
                              "a configuration this large is refused")
        return node

    def _expanded_size(self, node: Node | None) -> int:
        if isinstance(node, SequenceNode):
            return 1 + sum(self.sizes.get(id(child), 1) for child in node.value)
        if isinstance(node, MappingNode):
            return 1 + sum(self.sizes.get(id(k), 1) + self.sizes.get(id(v), 1) for k, v in node.value)
        return 1


def read_yaml(path: Path) -> Any:
    """The parsed document; ConfigError (one line) for non-text, malformed or abusive YAML."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a text file (byte {e.start} is not UTF-8); feature_store.yaml must be "
                          "YAML text") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read: {e.strerror or e}") from None
    if "\x00" in text:
        raise ConfigError(f"{path}: not a text file (it contains NUL bytes); feature_store.yaml must be YAML text")
    loader = _BoundedLoader(text, str(path))
    try:
        return loader.get_single_data()
    except yaml.YAMLError as e:
        # One line: where the parser gave up and why (PyYAML's own text spans several lines).
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}: malformed YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{path}: YAML nested too deeply") from None
    finally:
        loader.dispose()
