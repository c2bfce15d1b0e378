"""The real-time server built on the framework: chat rooms, notifications, a WebSocket gateway.

Everything here is an application of ``actors``; the framework (runtime, supervision, messages,
redis, pubsub, presence, observability, testing) never imports it. Its packages:

- ``actors.server.gateway``: the WebSocket gateway, its page and ``run_server``
  (``python -m actors serve``).
- ``actors.server.chat``: a supervised actor per active room, history and rate limits.
- ``actors.server.notifications``: notifications per user and for everybody, live updates.
- ``actors.server.http``: a small HTTP/1.1 server and the ``/metrics`` and ``/health`` routes.
- ``actors.server.demo``: ``python -m actors demo``, a supervision tree that fails on purpose.
- ``actors.server.cli``: the ``actors`` command line.

See docs/server.md.
"""

from __future__ import annotations
