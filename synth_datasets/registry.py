"""Registries of tasks, checks, students and backends, open to other installed packages.

Each registry is a name -> object mapping. Built-in entries are registered in code with
`register`; another installed package adds its own through an entry point in the registry's group
(`synth_datasets.tasks`, `synth_datasets.checks`, `synth_datasets.students`,
`synth_datasets.backends`), the way simonw/llm loads plugins:

    # the plugin package's pyproject.toml
    [project.entry-points."synth_datasets.checks"]
    too_excited = "my_package.checks:TooExcited"

The entry point's name is the name recipes use; its value is the object (a class or factory).
Entry points are read the first time a registry is read, so importing synth_datasets stays cheap.
A plugin that fails to load is logged and skipped (the rest still works); a plugin may not replace a
built-in entry (or one registered in code) of the same name. `synth-datasets plugins` lists every entry and where it came from.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import logging
from collections.abc import Iterator, MutableMapping
from typing import Any

logger = logging.getLogger(__name__)

BUILTIN = "built-in"
IN_CODE = "registered in code"


class Registry(MutableMapping):
    """A name -> object mapping that loads its plugins (entry points of `group`) on first read."""

    def __init__(self, group: str, what: str):
        self.group, self.what = group, what
        self._entries: dict[str, Any] = {}
        self._origins: dict[str, str] = {}
        self._loaded = False

    def register(self, name: str, obj: Any, origin: str = IN_CODE) -> Any:
        """Add `obj` under `name` (replacing an entry of that name); returns `obj`."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.what} name must be a non-empty string, got {name!r}")
        self._entries[name] = obj
        self._origins[name] = origin
        return obj

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)
        self._origins.pop(name, None)

    def origin(self, name: str) -> str:
        """'built-in', 'registered in code', or the distribution and entry point a plugin came from."""
        self._load()
        return self._origins[name]

    def lookup(self, name: str, field: str) -> Any:
        """The entry `name`, or a ValueError that names `field`, the choices and a close match."""
        self._load()
        if name in self._entries:
            return self._entries[name]
        close = difflib.get_close_matches(str(name), list(self._entries), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"{field}: {name!r} is not a known {self.what}{hint}; choose one of {sorted(self._entries)}, "
                         f"or install a plugin that adds it (`synth-datasets plugins` lists what is installed)")

    def reload(self) -> None:
        """Read the entry points again (after installing a plugin in a running process)."""
        for name in [k for k, v in self._origins.items() if v.startswith("plugin ")]:
            self.unregister(name)
        self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for ep in importlib.metadata.entry_points(group=self.group):
            dist = getattr(ep.dist, "name", None) or "?"
            origin = f"plugin {dist} ({ep.value})"
            if ep.name in self._entries:
                logger.warning("%s plugin %r from %s is ignored: the %s %r (%s) has that name",
                               self.what, ep.name, dist, self.what, ep.name, self._origins[ep.name])
                continue
            try:
                obj = ep.load()
            except Exception as e:  # noqa: BLE001  a broken plugin must not break the rest
                logger.warning("could not load %s plugin %r from %s (%s): %s: %s",
                               self.what, ep.name, dist, ep.value, type(e).__name__, e)
                continue
            self.register(ep.name, obj, origin)

    # MutableMapping: reads load the plugins first
    def __getitem__(self, name: str) -> Any:
        self._load()
        return self._entries[name]

    def __setitem__(self, name: str, obj: Any) -> None:
        self.register(name, obj)

    def __delitem__(self, name: str) -> None:
        self._load()
        del self._entries[name]
        self._origins.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(list(self._entries))

    def __len__(self) -> int:
        self._load()
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __repr__(self) -> str:
        return f"Registry({self.group!r}, {sorted(self._entries)})"
