"""Function actors: ``async for message in context``, ``Ask.reply`` and ``receive_batch``."""

from __future__ import annotations

import trio

from actors import ActorContext, Ask, open_actor_system


# docs: start echo
async def echo(context: ActorContext, prefix: str) -> None:
    async for message in context:
        match message:
            case Ask(message=str() as text):
                message.reply(f"{prefix}{text.upper()}")
            case Ask():
                message.reply(None)
            case _:
                print("echo was told:", message)


# docs: end echo


# docs: start summer
async def summer(context: ActorContext) -> None:
    total = 0
    while True:
        batch = await context.receive_batch(max_messages=100)
        print(f"summer took a batch of {len(batch)}")
        for message in batch:
            match message:
                case int() as number:
                    total += number
                case Ask():
                    message.reply(total)


# docs: end summer


async def main() -> None:
    async with open_actor_system() as system:
        # docs: start use
        ref = await system.spawn(echo, "echo: ")
        ref.tell_nowait("just so you know")
        print(await ref.ask("hello"))

        summing = await system.spawn(summer)
        for number in range(250):
            summing.tell_nowait(number)
        print("total:", await summing.ask("total?"))
        # docs: end use
        print("echo stopped:", await ref.stop())


if __name__ == "__main__":
    trio.run(main)
