"""Observability: instrument hooks (metrics and health come with the Pub/Sub layer)."""

from __future__ import annotations

from actors.observability._instrument import Instrument

__all__ = ["Instrument"]
