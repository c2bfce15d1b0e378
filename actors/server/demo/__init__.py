"""``python -m actors demo``: a small supervision tree that fails on purpose, shown live."""

from __future__ import annotations

from actors.server.demo._run import DemoOptions, run_demo

__all__ = ["DemoOptions", "run_demo"]
