"""Hydra configs of the plugin (a package so that ``pkg://nas_plugin_example.conf`` resolves)."""
