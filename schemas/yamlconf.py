"""Load a YAML config file into a pydantic model; errors name the file, line and field.

>>> from pydantic import BaseModel
>>> class Conf(BaseModel):
...     name: str
...     size: int
>>> try:
...     load_yaml_text("name: a\\nsize: big\\n", Conf, source="conf.yaml")
... except ConfigError as err:
...     print(err)
conf.yaml:2: size: Input should be a valid integer, unable to parse string as an integer
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ConfigError(ValueError):
    """A config file that cannot be used; the message is ``file:line: field: problem``.

    ``errors`` lists every problem found, each ``file:line: field: problem`` (the message
    names the first and counts the rest).
    """

    def __init__(self, message: str, errors: tuple[str, ...] | None = None) -> None:
        super().__init__(message)
        self.errors: tuple[str, ...] = errors if errors is not None else (message,)


def _line_of(root: yaml.Node, loc: tuple[Any, ...]) -> int:
    """1-based line of the YAML node along a pydantic error location.

    Walks as far as the path exists (a missing field stops at its parent). A mapping or
    list reached through a key is reported at the key's line, a scalar at its own.
    """
    node, key_node = root, None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if str(k.value) == str(part):
                    node, key_node = v, k
                    break
            else:
                break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node, key_node = node.value[part], None
        else:
            break
    mark = key_node.start_mark if key_node is not None and not isinstance(node, yaml.ScalarNode) \
        else node.start_mark
    return mark.line + 1


def load_yaml_text(text: str, model: type[M], *, source: str = "<string>") -> M:
    """Parse YAML text and validate it as ``model``; raise :class:`ConfigError` with a line."""
    try:
        root = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else 0
        raise ConfigError(f"{source}:{line}: invalid YAML: {err.problem or err}") from None
    except yaml.YAMLError as err:  # pragma: no cover - unmarked YAML errors are rare
        raise ConfigError(f"{source}: invalid YAML: {err}") from None
    if root is None:
        raise ConfigError(f"{source}:1: file is empty")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        every = []
        for e in err.errors():
            loc = tuple(e["loc"])
            field = ".".join(str(p) for p in loc) or "(top level)"
            every.append(f"{source}:{_line_of(root, loc)}: {field}: {e['msg']}")
        more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
        raise ConfigError(every[0] + more, tuple(every)) from None


def load_yaml_file(path: str | Path, model: type[M]) -> M:
    """Read ``path`` and validate it as ``model`` (see :func:`load_yaml_text`)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{p}: cannot read: {err.strerror or err}") from None
    return load_yaml_text(text, model, source=str(p))
