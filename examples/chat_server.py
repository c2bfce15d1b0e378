"""The chat gateway inside a program of your own, and a client that talks to it.

Starts the server on a free port with ``memory://`` (set REDIS_URL to share rooms and presence
with other processes through Redis), signs a token, connects one WebSocket client, joins a room,
says something, and stops in order.
"""

from __future__ import annotations

import os
from typing import Any

import orjson
import trio
import trio_websocket

from actors import open_actor_system
from actors.observability import PubSubMetrics
from actors.pubsub import open_pubsub
from actors.server.chat import RateLimit
from actors.server.gateway import (
    DemoLogin,
    GatewaySettings,
    TokenVerifier,
    open_gateway,
    serve_gateway,
)


# docs: start embed
async def main() -> None:
    url = os.environ.get("REDIS_URL", "memory://")
    secret = os.environ.get("ACTORS_GATEWAY_SECRET", "change me: a secret of 32 bytes or more")
    tokens = TokenVerifier.from_secret(secret.encode())  # HS256; KeyRing has RS256 and ES256
    settings = GatewaySettings(
        rooms=("lobby", "support"),
        allowed_origins=("https://chat.example.com",),
        chat_rate=RateLimit(rate=2.0, burst=5),
    )
    async with (
        open_actor_system() as system,
        open_pubsub(system, url, metrics=PubSubMetrics()) as pubsub,
        open_gateway(system, pubsub, tokens=tokens, settings=settings) as gateway,
        trio.open_nursery() as nursery,
    ):
        port = await nursery.start(serve_gateway, gateway, 0)
        print(f"serving on http://127.0.0.1:{port}")
        # Tokens come from the identity provider; here one is signed with the secret.
        await talk(port, token=DemoLogin(tokens).issue("ada")[0])
        nursery.cancel_scope.cancel()  # leaving open_gateway closes sessions first (1001)


# docs: end embed


# docs: start client
async def talk(port: int, token: str) -> None:
    async with trio_websocket.open_websocket_url(f"ws://127.0.0.1:{port}/ws") as socket:

        async def send(**frame: object) -> None:
            await socket.send_message(orjson.dumps(frame).decode())

        async def until(kind: str) -> dict[str, Any]:
            while True:
                frame: dict[str, Any] = orjson.loads(await socket.get_message())
                if frame["type"] == kind:
                    return frame

        await send(type="hello", token=token)
        print("welcome:", await until("welcome"))
        await send(type="join", room="lobby")
        joined = await until("joined")
        print("joined", joined["room"], "with", len(joined["history"]), "messages of history")
        await send(type="say", room="lobby", text="hello, lobby", ref="m1")
        print("message:", await until("message"))


# docs: end client


if __name__ == "__main__":
    trio.run(main)
