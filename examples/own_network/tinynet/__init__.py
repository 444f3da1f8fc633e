"""An example of bringing your own network and data to nas-engine (see README.md)."""

from __future__ import annotations

from tinynet.net import TinyNet

__all__ = ["TinyNet"]
