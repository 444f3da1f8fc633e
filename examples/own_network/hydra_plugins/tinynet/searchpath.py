"""Hydra finds this class by scanning the ``hydra_plugins`` namespace package at start-up."""

from __future__ import annotations

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class TinyNetSearchPathPlugin(SearchPathPlugin):
    """Adds ``pkg://tinynet.conf`` so that ``space=tinynet`` resolves (appended: the engine's configs keep priority)."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="nas-example-tinynet", path="pkg://tinynet.conf")
