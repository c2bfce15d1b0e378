"""The subscription actor: decodes what the broker delivers and calls one handler, by policy."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs
import trio

from actors._errors import MessageDecodeError
from actors.messages import (
    CODEC,
    Codec,
    TaggedUnion,
    Untagged,
    decode_cached,
    message_type_name,
)
from actors.pubsub._history import read_envelope
from actors.pubsub._policy import DeadLetter, ErrorAction, ErrorPolicy
from actors.pubsub._recovery import (
    CatchUp,
    CheckHistory,
    HistoryMessage,
    Recovered,
    Unrecoverable,
)
from actors.redis import ConnectionLost, Kind, RedisMessage, Resubscribed
from actors.runtime import Actor

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Iterator

    from actors.pubsub._recovery import ChannelRecovery, Delivery
    from actors.runtime import ExitReason

RecoveryEvent: TypeAlias = "Recovered | Unrecoverable"
"""What ``on_recovery`` is told: whether the history filled a gap."""

logger = logging.getLogger(__name__)


@attrs.define
class SubscriptionCounters:
    """What one subscription has done; kept across restarts of its actor."""

    received: int = 0
    """Messages that reached the actor."""
    handled: int = 0
    """Messages the handler finished without raising."""
    decode_errors: int = 0
    """Payloads that did not decode into the expected type."""
    retries: int = 0
    """Extra handler calls made by the retry policy."""
    skipped: int = 0
    """Messages given up on and handed to the dead-letter sink."""
    escalations: int = 0
    """Failures that crashed the actor (its supervisor restarted it or gave up)."""
    gaps: int = 0
    """Connection losses reported to the subscription."""
    last_message_at: float | None = None
    """When the last message arrived, on trio's clock (``trio.current_time()``): when the
    read that brought it from Redis ended (``RedisMessage.received_at``)."""


@attrs.frozen(kw_only=True)
class SubscriptionSpec:
    """Everything a subscription actor needs; the same for every incarnation."""

    name: bytes
    pattern: bool
    handler: Callable[..., Awaitable[object]]
    takes_channel: bool
    message_type: object
    policy: ErrorPolicy
    codec: Codec = CODEC
    counters: SubscriptionCounters = attrs.field(factory=SubscriptionCounters)
    on_gap: Callable[[ConnectionLost | Resubscribed], Awaitable[object]] | None = None
    on_recovery: Callable[[RecoveryEvent], Awaitable[object]] | None = None
    observer: SubscriptionObserver | None = None
    sharded: bool = False
    """Whether ``name`` is a shard channel (``SSUBSCRIBE``)."""
    takes_position: bool = False
    """Whether the handler takes a third argument: the message's position in its history."""
    envelopes: Callable[[bytes], bool] | None = None
    """Which channels' payloads come in a history envelope; None when none does."""
    recovery: ChannelRecovery | None = None
    """The channel's recovery, for a subscription with ``recover=True``."""
    decoder: Callable[[bytes], Any] = attrs.field(init=False)
    """``codec.decoder(message_type)``, looked up once for every payload."""

    @decoder.default
    def _look_up_decoder(self) -> Callable[[bytes], Any]:
        return self.codec.decoder(self.message_type)

    @property
    def label(self) -> str:
        kind = "pattern" if self.pattern else "shard channel" if self.sharded else "channel"
        return f"{kind} {self.name.decode(errors='replace')!r}"


class SubscriptionObserver:
    """Hooks for metrics; every method defaults to doing nothing."""

    def received(self, spec: SubscriptionSpec, message: RedisMessage, decoded: object) -> None:
        """A message decoded; ``decoded`` is the typed message."""

    def handled(self, spec: SubscriptionSpec, seconds: float) -> None:
        """The handler finished in ``seconds``."""

    def failed(self, spec: SubscriptionSpec, reason: str) -> None:
        """A message was given up on: ``reason`` is ``decode``, ``skip`` or ``escalate``."""

    def retried(self, spec: SubscriptionSpec) -> None:
        """The handler is called again."""

    def dropped(self, spec: SubscriptionSpec, reason: str) -> None:
        """The subscription's mailbox refused a message (called by the Redis reader, so it
        must be quick): ``reason`` is ``overflow_<policy>`` (``overflow_drop_oldest``, ...) or
        ``subscriber_stopped``."""

    def restarted(self, spec: SubscriptionSpec) -> None:
        """The subscription's actor was restarted by its supervisor."""

    def recovered(self, spec: SubscriptionSpec, event: Recovered) -> None:
        """A gap was filled from the channel's history (``event.count`` publications)."""

    def unrecoverable(self, spec: SubscriptionSpec, event: Unrecoverable) -> None:
        """A gap could not be filled from the channel's history."""


class SubscriptionActor(Actor):
    """One subscription's actor: its mailbox is fed by the broker, it calls the handler."""

    __slots__ = ("spec",)  # no instance dict: there is one of these per subscription

    def __init__(self, spec: SubscriptionSpec) -> None:
        self.spec = spec

    async def restarted(self, reason: ExitReason) -> None:
        logger.warning(
            "subscription to %s restarted after %r",
            self.spec.label,
            reason,
            extra={"channel": self.spec.name},
        )
        if self.spec.observer is not None:
            self.spec.observer.restarted(self.spec)

    async def receive_many(self, messages: Iterator[object]) -> None:
        # The runtime hands over a whole batch: the messages of a channel without history go
        # through one loop, without a call or a coroutine of their own.
        if self.spec.envelopes is None:
            await self._process_all(messages)
        else:
            for message in messages:
                await self.receive_one(message)

    async def receive(self, message: object) -> None:
        """What ``receive_many`` does not take itself: a message on a channel with history, a
        gap, or a recovery's tick."""
        if type(message) is RedisMessage:
            if self.spec.envelopes is None:
                await self._process(message)
            else:
                await self._open_envelope(message)
        elif isinstance(message, (ConnectionLost, Resubscribed)):
            spec = self.spec
            if isinstance(message, ConnectionLost):
                spec.counters.gaps += 1
            if spec.on_gap is not None:
                await spec.on_gap(message)
            if isinstance(message, Resubscribed) and spec.recovery is not None:
                await self._deliver(await spec.recovery.catch_up(message.duration))
        elif type(message) is CheckHistory and self.spec.recovery is not None:
            await self._deliver(await self.spec.recovery.check())
        elif type(message) is CatchUp and self.spec.recovery is not None:
            await self._deliver(
                await self.spec.recovery.catch_up(message.gap, report=message.report)
            )

    async def _process(self, message: RedisMessage) -> None:
        await self._process_all((message,))

    async def _process_all(self, messages: Iterable[object]) -> None:
        # The hot path, written out: each message decoded (once for every local subscription
        # of its type) and handed to the handler, which succeeds. Anything else in the batch
        # (a gap, an ask) goes to receive_one, in its place.
        spec = self.spec
        counters = spec.counters
        expected = spec.message_type
        decoder = spec.decoder
        handler = spec.handler
        plain = spec.observer is None and not spec.takes_channel
        for message in messages:
            if type(message) is not RedisMessage and type(message) is not HistoryMessage:
                await self.receive_one(message)
                continue
            counters.received += 1
            counters.last_message_at = message.received_at
            try:
                decoded = decode_cached(message, expected, decoder=decoder)
            except MessageDecodeError as error:
                counters.decode_errors += 1
                if spec.observer is not None:
                    spec.observer.failed(spec, "decode")
                await self._give_up(message, error, spec.policy.decode_errors, f"decode: {error}")
                continue
            if not plain:
                await self._handle(message, decoded, None)
                continue
            try:
                await handler(decoded)
            except Exception as error:
                await self._handle(message, decoded, error)
                continue
            counters.handled += 1

    async def _open_envelope(self, message: RedisMessage) -> None:
        """A message on a channel with history: its payload is an envelope with a position."""
        spec = self.spec
        assert spec.envelopes is not None
        if not spec.envelopes(message.channel):
            await self._process(message)  # a pattern's channel without history
            return
        try:
            position, payload = read_envelope(message.payload)
        except ValueError as error:
            spec.counters.received += 1
            spec.counters.decode_errors += 1
            if spec.observer is not None:
                spec.observer.failed(spec, "decode")
            decode_error = MessageDecodeError(str(error), expected="a history envelope")
            await self._give_up(
                message, decode_error, spec.policy.decode_errors, f"decode: {decode_error}"
            )
            return
        opened = HistoryMessage(
            message.kind,
            message.channel,
            payload,
            message.pattern,
            message.received_at,
            position=position,
        )
        if spec.recovery is None:
            await self._process(opened)
        else:
            await self._deliver(await spec.recovery.live(position, payload), opened)

    async def _deliver(
        self, deliveries: list[Delivery], live: HistoryMessage | None = None
    ) -> None:
        """Hand what recovery answered to the handler and to ``on_recovery``, in order."""
        spec = self.spec
        kind = Kind.SHARD if spec.sharded else Kind.CHANNEL
        for delivery in deliveries:
            if isinstance(delivery, (Recovered, Unrecoverable)):
                await self._report(delivery)
            elif live is not None and delivery[0] is live.position:
                await self._process(live)
            else:
                position, payload = delivery
                await self._process(
                    HistoryMessage(
                        kind, spec.name, payload, None, trio.current_time(), position=position
                    )
                )

    async def _report(self, event: RecoveryEvent) -> None:
        spec = self.spec
        if spec.observer is not None:
            if isinstance(event, Recovered):
                spec.observer.recovered(spec, event)
            else:
                spec.observer.unrecoverable(spec, event)
        if spec.on_recovery is not None:
            await spec.on_recovery(event)

    async def _handle(
        self, message: RedisMessage, decoded: object, error: Exception | None
    ) -> None:
        """Call the handler by the error policy; ``error`` is the first call's, if it was made
        already (the common case's)."""
        spec = self.spec
        observer = spec.observer
        if observer is not None:
            observer.received(spec, message, decoded)
        if error is None:
            error = await self._call(message, decoded)
        attempt = 1
        while error is not None:
            action = spec.policy.action_for(error)
            retry = spec.policy.retry
            if action is ErrorAction.RETRY and attempt < retry.max_attempts:
                spec.counters.retries += 1
                if observer is not None:
                    observer.retried(spec)
                await trio.sleep(retry.backoff.delay(attempt - 1, self.context.system.random))
                attempt += 1
                error = await self._call(message, decoded)
                continue
            if action is ErrorAction.RETRY:
                action = spec.policy.exhausted
            await self._give_up(message, error, action, f"handler: {error!r}")
            return

    async def _call(self, message: RedisMessage, decoded: object) -> Exception | None:
        """One handler call, counted and timed; the exception it raised, if any."""
        spec = self.spec
        observer = spec.observer
        started = trio.current_time() if observer is not None else 0.0
        try:
            if spec.takes_position:
                position = message.position if isinstance(message, HistoryMessage) else None
                await spec.handler(decoded, message.channel.decode(errors="replace"), position)
            elif spec.takes_channel:
                await spec.handler(decoded, message.channel.decode(errors="replace"))
            else:
                await spec.handler(decoded)
        except Exception as error:
            return error
        spec.counters.handled += 1
        if observer is not None:
            observer.handled(spec, trio.current_time() - started)
        return None

    async def _give_up(
        self, message: RedisMessage, error: BaseException, action: ErrorAction, reason: str
    ) -> None:
        spec = self.spec
        type_name = _type_name(spec.message_type)
        logger.warning(
            "subscription to %s: %s message on %r (expected %s): %s",
            spec.label,
            "skipped" if action is ErrorAction.SKIP else "escalated after",
            message.channel,
            type_name,
            reason,
            extra={"channel": message.channel},
        )
        if spec.policy.dead_letters is not None:
            letter = DeadLetter(message.channel, spec.name, message.payload, reason, error)
            try:
                await spec.policy.dead_letters(letter)
            except Exception:
                logger.exception(
                    "the dead-letter sink of %s failed",
                    spec.label,
                    extra={"channel": message.channel},
                )
        if action is ErrorAction.SKIP:
            spec.counters.skipped += 1
            if spec.observer is not None:
                spec.observer.failed(spec, "skip")
            return
        spec.counters.escalations += 1
        if spec.observer is not None:
            spec.observer.failed(spec, "escalate")
        raise error


def _type_name(message_type: object) -> str:
    if isinstance(message_type, Untagged):
        message_type = message_type.cls
    elif isinstance(message_type, TaggedUnion):
        message_type = message_type.union
    registered = message_type_name(message_type) if isinstance(message_type, type) else None
    return registered or str(getattr(message_type, "__name__", repr(message_type)))
