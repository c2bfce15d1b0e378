from __future__ import annotations

from actors import ActorContext, ActorSystem, Ask


async def echo(context: ActorContext) -> None:
    async for message in context:
        if isinstance(message, Ask):
            message.reply(message.message)


async def test_function_actor_answers_an_ask(system: ActorSystem) -> None:
    ref = await system.spawn(echo)
    assert await ref.ask("ping") == "ping"
