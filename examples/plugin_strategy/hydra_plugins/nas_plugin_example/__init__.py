"""Hydra plugin of nas-plugin-example: puts the package's configs on Hydra's search path."""
