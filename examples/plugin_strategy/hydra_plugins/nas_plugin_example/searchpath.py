"""Hydra finds this class by scanning the ``hydra_plugins`` namespace package at start-up."""

from __future__ import annotations

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class NasPluginExampleSearchPathPlugin(SearchPathPlugin):
    """Adds ``pkg://nas_plugin_example.conf`` so ``strategy=simulated_annealing`` resolves.

    Appended, not prepended: the engine's own configs keep priority, so a plugin
    can add config options but never silently replace the engine's.
    """

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="nas-plugin-example", path="pkg://nas_plugin_example.conf")
