"""``open_pubsub``: typed publish and subscribe, each handler a supervised actor.

One ``PubSub`` per process: it owns the broker (the Redis connection actor, or the in-process
memory broker) and a supervisor for the subscription actors. ``publish`` encodes a message once
with the codec; ``subscribe`` starts an actor that decodes what arrives (at most once per
payload, however many subscriptions share it) and calls the handler under an error policy.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import logging
import typing
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final

import attrs
import trio

from actors._errors import (
    ActorsError,
    InvalidChannelNameError,
    RedisConnectionError,
    RedisError,
    RedisReplyError,
    RedisTimeoutError,
)
from actors.messages import CODEC, GLOB_CHARACTERS, Codec
from actors.pubsub._channel_history import ChannelHistories
from actors.pubsub._connection_actor import DEFAULT_CONNECTION_OPTIONS, ConnectionOptions
from actors.pubsub._history_store import HistoryRules, HistoryStore
from actors.pubsub._policy import (
    DEFAULT_ERROR_POLICY,
    DEFAULT_RETRY_POLICY,
    ErrorPolicy,
    RetryPolicy,
)
from actors.pubsub._recovery import (
    UNKNOWN_GAP,
    CatchUp,
    RecoveryState,
    WatchRecovery,
    check_histories,
)
from actors.pubsub._sinks import MailboxSink, SubscriptionSink
from actors.pubsub._subscription import (
    RecoveryEvent,
    SubscriptionActor,
    SubscriptionCounters,
    SubscriptionObserver,
    SubscriptionSpec,
    _type_name,
)
from actors.redis import heals
from actors.runtime import Down, MailboxConfig, MailboxStatistics, Overflow
from actors.supervision import ChildSpec, Strategy, SupervisorSpec, open_supervisor

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

    from actors.observability import HealthReport, PubSubMetrics
    from actors.pubsub._broker import Broker, BrokerSubscription
    from actors.pubsub._history import History, Position
    from actors.redis import ConnectionLost, Resubscribed
    from actors.runtime import ActorContext, ActorRef, ActorSystem
    from actors.supervision import Supervisor

logger = logging.getLogger(__name__)

DEFAULT_BUFFER_SIZE: Final = 1000  # messages per subscription mailbox; the users' buffer size
_MARK: Final = "__actors_subscription__"
RELEASER_CHILD_ID: Final = "releaser"
HISTORY_CHECKER_CHILD_ID: Final = "history-checker"
_subscription_numbers = itertools.count(1)


@attrs.frozen(kw_only=True)
class PubSubSettings:
    """Settings of one ``PubSub``, with the defaults our users asked for.

    Attributes:
        buffer_size: Mailbox capacity of each subscription.
        overflow: What a full subscription mailbox does; the reader never waits for it.
        ack_timeout: Seconds a subscribe waits for the broker to confirm it (30 s).
        publish_retry: Attempts and backoff for a publish that meets a lost connection
            (3 attempts, 100 ms, x2); each retry also waits for the connection to be back, up
            to ``connection.reconnect_wait`` (5 s) in all (see ``PubSub.publish_bound``).
        error_policy: The default error policy of subscriptions.
        connection: Reconnect backoff and liveness probes of the Redis connection actor.
        max_restarts: Subscription restarts allowed within ``within`` seconds before the
            subscriptions' supervisor gives up and the failure reaches ``open_pubsub``.
        within: The window for ``max_restarts``, in seconds.
        codec: The codec for every payload.
        histories: The channels that keep history, by exact name or glob pattern (a room's
            ``chat:{*}``), and how much (see docs/recovery.md). A publish on one of them is
            numbered and kept; its subscribers receive each message with its position and may
            ``recover=True``. Publishers and subscribers of a channel must agree.
        history_check_interval: Seconds between the checks of a recovering subscription's
            position against the top of its channel's history (10 s).
    """

    buffer_size: int = DEFAULT_BUFFER_SIZE
    overflow: Overflow = Overflow.DROP_OLDEST
    ack_timeout: float = 30.0
    publish_retry: RetryPolicy = DEFAULT_RETRY_POLICY
    error_policy: ErrorPolicy = DEFAULT_ERROR_POLICY
    connection: ConnectionOptions = DEFAULT_CONNECTION_OPTIONS
    max_restarts: int = 10
    within: float = 5.0
    codec: Codec = CODEC
    histories: Mapping[str, History] = attrs.field(factory=dict, hash=False)
    history_check_interval: float = 10.0


@attrs.frozen(kw_only=True)
class HandlerStatistics:
    """One typed subscription: its counters and its mailbox."""

    name: str
    """The channel or pattern."""
    pattern: bool
    """Whether ``name`` is a pattern."""
    sharded: bool
    """Whether ``name`` is a shard channel."""
    counters: SubscriptionCounters
    """Received, handled, decode errors, retries, skipped, escalations, gaps."""
    mailbox: MailboxStatistics
    """Depth and drops of the subscription's mailbox."""
    restarts: int
    """Restarts of the subscription's actor."""
    recovery: RecoveryState | None = None
    """The position and recovery counters of a subscription with ``recover=True``."""


class SubscriptionHandle:
    """A running subscription; ``await close()`` unsubscribes and stops its actor.

    Its lifetime is the actor's: when the subscription's actor stops for good for any reason
    (``close()``, ``ref.stop()``, its supervisor giving up), the broker subscription is released
    as ``close()`` would release it.
    """

    def __init__(
        self,
        pubsub: PubSub,
        spec: SubscriptionSpec,
        ref: ActorRef,
        broker_subscription: BrokerSubscription,
        child_id: str,
    ) -> None:
        self._pubsub = pubsub
        self.spec = spec
        self.ref = ref
        self._broker_subscription = broker_subscription
        self._child_id = child_id
        self._released = False

    @property
    def name(self) -> str:
        """The channel or pattern subscribed to."""
        return self.spec.name.decode()

    @property
    def position(self) -> Position | None:
        """For ``recover=True``: the position of the last message delivered (None while the
        channel has no history); None for other subscriptions."""
        recovery = self.spec.recovery
        return None if recovery is None else recovery.state.position

    async def close(self) -> None:
        """Unsubscribe, then stop the subscription's actor (messages still queued are dropped)."""
        await self._release()
        await self.ref.stop("unsubscribed")

    async def _release(self) -> None:
        """Give the broker subscription up and forget the handle; once, whoever asks first."""
        if self._released:
            await trio.lowlevel.checkpoint()
            return
        self._released = True
        self._pubsub._handles.discard(self)
        await self._broker_subscription.close()

    async def _forget_child(self) -> None:
        """The actor stopped for good: its supervisor need not keep its spec."""
        with contextlib.suppress(ActorsError):
            await self._pubsub.supervisor.delete_child(self._child_id)

    def statistics(self) -> HandlerStatistics:
        """Counters of the subscription and its mailbox."""
        actor = self.ref.statistics()
        return HandlerStatistics(
            name=self.name,
            pattern=self.spec.pattern,
            sharded=self.spec.sharded,
            counters=attrs.evolve(self.spec.counters),
            mailbox=actor.mailbox,
            restarts=actor.restarts,
            recovery=None if self.spec.recovery is None else attrs.evolve(self.spec.recovery.state),
        )


def _check_name(name: str, *, pattern: bool) -> bytes:
    if not name:
        raise InvalidChannelNameError(name, "a channel or pattern name must not be empty")
    # Every glob character is refused, escaped or not, exactly as docs/pubsub.md lists them:
    # an exact channel never needs one, and a name that holds one was likely meant as a pattern.
    if not pattern and any(char in GLOB_CHARACTERS for char in name):
        raise InvalidChannelNameError(
            name,
            f"it contains glob characters ({GLOB_CHARACTERS}): subscribe to a pattern with "
            "psubscribe (pattern=True); build channels from user input with channel_name()",
        )
    return name.encode()


def _handler_shape(handler: Callable[..., Awaitable[object]]) -> tuple[int, object | None]:
    """How many arguments the handler takes (the message, the channel, the position), and the
    message type its annotation says (None for ``object`` or ``Any``, which say nothing)."""
    signature = inspect.signature(handler)
    parameters = [
        parameter
        for parameter in signature.parameters.values()
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
    ]
    if not 1 <= len(parameters) <= 3:
        raise TypeError(
            "a handler takes the message, and optionally the channel and the position: "
            f"{handler!r}{signature}"
        )
    try:
        hints = typing.get_type_hints(handler)
    except Exception:
        hints = {}
    annotated = hints.get(parameters[0].name)
    return len(parameters), None if annotated in (object, typing.Any) else annotated


class PubSub:
    """Typed publish and subscribe for one process. Open it with ``open_pubsub``."""

    def __init__(
        self,
        system: ActorSystem,
        broker: Broker,
        supervisor: Supervisor,
        settings: PubSubSettings,
        handles: set[SubscriptionHandle],
        observer: SubscriptionObserver | None = None,
        metrics: PubSubMetrics | None = None,
    ) -> None:
        self.system = system
        self.broker = broker
        self.supervisor = supervisor
        """Supervises the subscription actors, and any actor that needs the broker to the end
        (it stops them before the broker closes), such as a closed presence tracker's sweeps."""
        self.settings = settings
        self.metrics = metrics
        self._releaser = supervisor.child(RELEASER_CHILD_ID)
        self._history_checker = supervisor.child(HISTORY_CHECKER_CHILD_ID)
        self._histories = ChannelHistories(
            broker,
            HistoryRules(settings.histories),
            ack_timeout=settings.ack_timeout,
            hold=settings.connection.reconnect_wait,
        )
        self.history_rules = self._histories.rules
        self._publish_bound: float | None = None  # the settings are frozen: computed once
        if observer is None and metrics is not None:
            from actors.pubsub._health import MetricsObserver

            observer = MetricsObserver(metrics)
        self.observer = observer
        self._handles = handles

    def keep_history(self, name: str, history: History) -> None:
        """Keep ``history`` for the channel ``name`` (or the channels its glob pattern matches)
        from now on, as ``settings.histories`` does from the start: for services that own their
        channels (chat rooms keep ``chat:*``). Publishers and subscribers must agree: every
        process that uses the channels says so.

        Raises:
            TypeError: ``history`` is not a ``History``.
        """
        self.history_rules.add(name, history)

    @property
    def history_store(self) -> HistoryStore:
        """Where the broker keeps channel history: its Redis, or memory for ``memory://``."""
        return self._histories.store

    def publish_bound(self) -> float:
        """The longest a ``publish`` takes, in seconds: the connection options'
        ``reconnect_wait`` plus the retry policy's delays (5 + 0.1 + 0.2 = 5.3 s by default)."""
        if self._publish_bound is None:
            retry = self.settings.publish_retry
            delays = sum(retry.backoff.longest_delay(n) for n in range(retry.max_attempts - 1))
            self._publish_bound = self.settings.connection.reconnect_wait + delays
        return self._publish_bound

    async def publish(
        self,
        channel: str,
        message: object,
        *,
        group: str | None = None,
        as_type: object = None,
        sharded: bool = False,
    ) -> int:
        """Encode ``message`` once and publish it; returns the number of receivers.

        A publish that meets a lost connection, or a refusal for now (``LOADING``,
        ``TRYAGAIN``, ``CLUSTERDOWN``...), is retried by ``settings.publish_retry`` (3 attempts,
        100 ms then 200 ms apart), each retry once the connection is back. Issued
        during an outage, it completes one round trip after the connection is back, or fails
        within ``publish_bound()`` seconds. An attempt cut off by a lost connection may have
        been published already, so a retried message can arrive twice: receivers drop
        duplicates by the message's ``id``, which every attempt carries unchanged.

        Args:
            channel: The channel to publish on.
            message: An attrs class (a registered message is tagged), or ``str``, ``bytes`` or
                ``dict``.
            group: The channel group for metrics, such as ``"user:*"`` for ``"user:42"``;
                default: the channel itself (the metrics fold rare values past their limit).
            as_type: What the message is sent as (see ``Codec.encode``): ``untagged(cls)``
                for a registered class without its discriminator, a ``tagged_union(...)`` for
                a union's own discriminator; by default a registered message is tagged and any
                other attrs class is not.
            sharded: Publish to the shard channel ``channel`` (``SPUBLISH``): only its
                ``subscribe(..., sharded=True)`` subscribers receive it, never a plain or pattern
                subscription. On a cluster it goes to the node that owns the channel's hash slot.

        On a channel with history (``settings.histories``) the message is numbered and kept in
        the channel's history by one script, and a retry never appends it twice: the message's
        ``id`` (a new one for a message without an ``id``) marks it as published.

        Raises:
            RedisConnectionError: Still failing after the last attempt, or the connection was
                not back within the bound.
            RedisTimeoutError: An attempt got no answer within the bound (the connection looked
                open): the message may or may not have been published.
            RedisConfigurationError: The connection stopped for good (at once).
            TypeError: The message cannot be encoded, or a ``str`` or ``bytes`` message on a
                channel with history is not JSON (its envelope carries it as JSON).
        """
        payload = self.settings.codec.encode(message, as_type=as_type)
        send = (
            self._histories.publisher(channel, message, payload, sharded)
            if self._histories.rules
            else None
        )
        if send is None:
            send = self.broker.spublish if sharded else self.broker.publish
        if self.metrics is not None:
            self.metrics.message_published(group or channel, _type_name(type(message)))
        retry = self.settings.publish_retry
        bound = self.publish_bound()
        # The bound is a deadline handed down to the connection, not a cancel scope around the
        # attempts: entering and leaving a scope per publish cost a quarter of its time, and
        # the connection's deadline watch fails the attempt at the same moment. Scopes bound
        # only the waits between attempts, which come after a failure.
        deadline = trio.current_time() + bound
        failure: RedisError | None = None
        for attempt in range(1, retry.max_attempts + 1):
            try:
                return await send(channel, payload, deadline)
            except RedisTimeoutError as error:
                raise RedisTimeoutError(
                    f"publishing to {channel!r} got no answer within {bound:.3g} s; it may or "
                    "may not have been published"
                ) from error
            except (RedisConnectionError, RedisReplyError) as error:
                # A refusal that says "not now" (a server loading its data set, a slot
                # being migrated) is retried like a lost connection; any other is final.
                if not heals(error):
                    raise
                failure = error
                if attempt == retry.max_attempts:
                    raise RedisConnectionError(
                        f"publishing to {channel!r} failed {attempt} times: {error}"
                    ) from error
            with trio.move_on_at(deadline):
                await trio.sleep(retry.backoff.delay(attempt - 1, self.system.random))
                await self.broker.wait_connected()
                continue
            break
        raise RedisConnectionError(
            f"publishing to {channel!r} failed: the connection was not back within {bound:.3g} s"
            f" ({failure})"
        ) from failure

    async def subscribe(
        self,
        channel: str,
        handler: Callable[..., Awaitable[object]],
        *,
        message_type: object | None = None,
        mailbox: MailboxConfig | None = None,
        error_policy: ErrorPolicy | None = None,
        on_gap: Callable[[ConnectionLost | Resubscribed], Awaitable[object]] | None = None,
        sharded: bool = False,
        recover: bool = False,
        since: Position | None = None,
        on_recovery: Callable[[RecoveryEvent], Awaitable[object]] | None = None,
    ) -> SubscriptionHandle:
        """Call ``handler`` for every message on one exact channel, in a supervised actor.

        Args:
            channel: The exact channel; glob characters are refused (use ``psubscribe``).
            handler: ``async def handler(message)``, ``async def handler(message, channel)`` or
                ``async def handler(message, channel, position)`` (the message's ``Position``
                in its channel's history; None on a channel without history).
            message_type: What payloads decode into (see ``Codec.decode``): a registered
                message class or a union of them (tagged), ``tagged_union(...)``, an attrs
                class that is not registered or ``untagged(cls)`` (no discriminator), or
                ``str``, ``bytes``, ``dict``; default: the handler's annotation, else ``bytes``.
            mailbox: The subscription's mailbox; default ``settings.buffer_size`` and
                ``settings.overflow``.
            error_policy: Default ``settings.error_policy``.
            on_gap: Called with ``ConnectionLost`` and ``Resubscribed`` events.
            sharded: Subscribe to the shard channel ``channel`` (``SSUBSCRIBE``), fed by
                ``publish(..., sharded=True)`` only. On a cluster the subscription lives on the
                node that owns the channel's hash slot and follows the slot when it moves (a gap:
                ``ConnectionLost`` then ``Resubscribed``, both naming the channel).
            recover: For a channel with history: deliver every publication once and in order
                across gaps, reading what was missed back from the history (``Recovered``), or
                telling ``on_recovery`` it cannot (``Unrecoverable``); see docs/recovery.md.
                Without ``since``, subscribe first reads the history's position, within
                ``settings.ack_timeout`` (``RedisTimeoutError`` past it).
            since: With ``recover``: start after this position (one a handler was given, as a
                reconnecting browser sends), delivering what was published since first.
            on_recovery: With ``recover``: called with ``Recovered`` once a gap is filled (after
                the messages it recovered) and ``Unrecoverable`` when it cannot be (reload the
                state the messages build), in order with the messages.

        Raises:
            InvalidChannelNameError: ``channel`` is empty or contains glob characters.
            ValueError: ``recover`` on a channel without history, or ``since`` without
                ``recover``.
        """
        name = _check_name(channel, pattern=False)
        return await self._subscribe(
            name,
            False,
            handler,
            message_type,
            mailbox,
            error_policy,
            on_gap,
            sharded=sharded,
            recover=recover,
            since=since,
            on_recovery=on_recovery,
        )

    async def psubscribe(
        self,
        pattern: str,
        handler: Callable[..., Awaitable[object]],
        *,
        message_type: object | None = None,
        mailbox: MailboxConfig | None = None,
        error_policy: ErrorPolicy | None = None,
        on_gap: Callable[[ConnectionLost | Resubscribed], Awaitable[object]] | None = None,
    ) -> SubscriptionHandle:
        """Like ``subscribe``, for a glob pattern written in code (never from user input).

        A two-argument handler receives the concrete channel of each message. Messages on the
        pattern's channels with history come out of their envelopes (a three-argument handler
        gets their positions), but a pattern does not recover: subscribe to the channel for that.
        """
        name = _check_name(pattern, pattern=True)
        return await self._subscribe(
            name, True, handler, message_type, mailbox, error_policy, on_gap
        )

    async def _subscribe(
        self,
        name: bytes,
        pattern: bool,
        handler: Callable[..., Awaitable[object]],
        message_type: object | None,
        mailbox: MailboxConfig | None,
        error_policy: ErrorPolicy | None,
        on_gap: Callable[[ConnectionLost | Resubscribed], Awaitable[object]] | None,
        *,
        sharded: bool = False,
        recover: bool = False,
        since: Position | None = None,
        on_recovery: Callable[[RecoveryEvent], Awaitable[object]] | None = None,
    ) -> SubscriptionHandle:
        arity, annotated = _handler_shape(handler)
        envelopes, recovery = await self._histories.for_subscription(name, pattern, recover, since)
        spec = SubscriptionSpec(
            name=name,
            pattern=pattern,
            handler=handler,
            takes_channel=arity >= 2,
            takes_position=arity == 3,
            envelopes=envelopes,
            recovery=recovery,
            message_type=message_type or annotated or bytes,
            policy=error_policy or self.settings.error_policy,
            codec=self.settings.codec,
            on_gap=on_gap,
            on_recovery=on_recovery,
            observer=self.observer,
            sharded=sharded,
        )
        config = mailbox or MailboxConfig(
            capacity=self.settings.buffer_size, overflow=self.settings.overflow
        )
        child = ChildSpec(
            id=f"subscription-{next(_subscription_numbers)}:{name.decode(errors='replace')}",
            start=SubscriptionActor,
            args=(spec,),
            mailbox=config,
        )
        ref = await self.supervisor.start_child(child)
        observer = self.observer
        sink: MailboxSink = (
            MailboxSink(ref)
            if observer is None
            else SubscriptionSink(ref, lambda reason: observer.dropped(spec, reason))
        )
        try:
            with trio.fail_after(self.settings.ack_timeout + 1):
                if pattern:
                    broker_subscription = await self.broker.psubscribe(name, sink)
                elif sharded:
                    broker_subscription = await self.broker.ssubscribe(name, sink)
                else:
                    broker_subscription = await self.broker.subscribe(name, sink)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self.supervisor.terminate_child(child.id)
                await self.supervisor.delete_child(child.id)
            raise
        handle = SubscriptionHandle(self, spec, ref, broker_subscription, child.id)
        self._handles.add(handle)
        await self._releaser.tell(_Watch(handle))
        if recovery is not None:
            # What was published between reading the position and the subscription's start.
            await ref.tell(CatchUp(UNKNOWN_GAP, "always") if since else CatchUp(0.0, "never"))
            await self._history_checker.tell(WatchRecovery(ref))
        return handle

    async def register(self, service: object) -> list[SubscriptionHandle]:
        """Subscribe every method of ``service`` marked with ``@subscription``."""
        handles = []
        for attribute in dir(type(service)):
            options = getattr(getattr(type(service), attribute, None), _MARK, None)
            if options is None:
                continue
            method = getattr(service, attribute)
            name = _check_name(options.name, pattern=options.pattern)
            handles.append(
                await self._subscribe(
                    name,
                    options.pattern,
                    method,
                    options.message_type,
                    options.mailbox,
                    options.error_policy,
                    None,
                    sharded=options.sharded,
                )
            )
        return handles

    async def health(self) -> HealthReport:
        """Up, degraded or down, with connection, server and subscription details."""
        from actors.pubsub._health import pubsub_health

        return await pubsub_health(self)

    def subscriptions(self) -> list[SubscriptionHandle]:
        """Every open subscription."""
        return sorted(self._handles, key=lambda handle: handle.ref.actor_id)


@attrs.frozen(kw_only=True)
class _SubscriptionOptions:
    name: str
    pattern: bool
    message_type: object | None
    mailbox: MailboxConfig | None
    error_policy: ErrorPolicy | None
    sharded: bool = False


def subscription(
    name: str,
    *,
    pattern: bool = False,
    message_type: object | None = None,
    mailbox: MailboxConfig | None = None,
    error_policy: ErrorPolicy | None = None,
    sharded: bool = False,
) -> Callable[[Callable[..., Awaitable[object]]], Callable[..., Awaitable[object]]]:
    """Mark a service method as a handler; ``PubSub.register(service)`` subscribes it.

    ``pattern=True`` subscribes a glob pattern, ``sharded=True`` a shard channel (see
    ``PubSub.subscribe``); not both.

    Example:
        class NotificationSubscriber:
            @subscription("notifications")
            async def handle(self, message: NotificationMessage) -> None: ...

            @subscription("events.*", pattern=True)
            async def handle_events(self, message: Event, channel: str) -> None: ...
    """
    _check_name(name, pattern=pattern)
    if pattern and sharded:
        raise ValueError("a shard channel is never a pattern: pass pattern or sharded, not both")
    options = _SubscriptionOptions(
        name=name,
        pattern=pattern,
        message_type=message_type,
        mailbox=mailbox,
        error_policy=error_policy,
        sharded=sharded,
    )

    def mark(method: Callable[..., Awaitable[object]]) -> Callable[..., Awaitable[object]]:
        setattr(method, _MARK, options)
        return method

    return mark


@asynccontextmanager
async def open_pubsub(
    system: ActorSystem,
    url: str = "memory://",
    *,
    settings: PubSubSettings | None = None,
    observer: SubscriptionObserver | None = None,
    metrics: PubSubMetrics | None = None,
) -> AsyncIterator[PubSub]:
    """Open typed Pub/Sub on ``memory://`` (in-process) or a ``redis://``-family URL.

    Leaving the block stops every subscription, then the broker. If the subscriptions'
    supervisor gives up (restart intensity), its ``RestartIntensityError`` leaves the block.

    Args:
        system: The actor system the broker and the subscription actors run in.
        url: ``memory://`` or a ``redis://``, ``rediss://`` or ``unix://`` URL.
        settings: Buffer sizes, timeouts, retry and error policies, connection options.
        observer: Hooks called for every message (for metrics of your own).
        metrics: Prometheus metrics to feed (messages, drops, decode errors, retries,
            processing time, lag, subscribers, mailbox depth, reconnects).
    """
    from actors.pubsub._health import MetricsHubObserver, gauge_readings
    from actors.pubsub._open import open_broker

    settings = settings or PubSubSettings()
    options = attrs.evolve(settings.connection, ack_timeout=settings.ack_timeout)
    spec = SupervisorSpec(
        strategy=Strategy.ONE_FOR_ONE,
        max_restarts=settings.max_restarts,
        within=settings.within,
    )
    handles: set[SubscriptionHandle] = set()
    spec = attrs.evolve(
        spec,
        children=[
            ChildSpec(id=RELEASER_CHILD_ID, start=_release_stopped_subscriptions, args=(handles,)),
            ChildSpec(
                id=HISTORY_CHECKER_CHILD_ID,
                start=check_histories,
                args=(
                    lambda: [h.ref for h in handles if h.spec.recovery is not None],
                    settings.history_check_interval,
                ),
            ),
        ],
    )
    hub_observer = MetricsHubObserver(metrics) if metrics is not None else None
    async with (
        open_broker(system, url, options=options, observer=hub_observer) as broker,
        open_supervisor(system, spec) as supervisor,
    ):
        pubsub = PubSub(system, broker, supervisor, settings, handles, observer, metrics)
        if metrics is not None:
            metrics.read_gauges_from(lambda: gauge_readings(pubsub))
        try:
            yield pubsub
        finally:
            if metrics is not None:
                metrics.stop_reading_gauges()


@attrs.frozen
class _Watch:
    """Tells the releaser about a new subscription."""

    handle: SubscriptionHandle


async def _release_stopped_subscriptions(
    context: ActorContext, open_handles: set[SubscriptionHandle]
) -> None:
    """The releaser actor: watches every subscription's actor, and when one stops for good
    (closed, stopped through its ref, given up on by its supervisor) releases its broker
    subscription, as ``SubscriptionHandle.close()`` would.

    One actor for all subscriptions, the first child of their supervisor: no task per
    subscription, nothing left behind. A restarted releaser watches every open handle again.
    """
    handles: dict[ActorRef, SubscriptionHandle] = {}
    for handle in list(open_handles):
        handles[handle.ref] = handle
        context.watch(handle.ref)
    async for message in context:
        match message:
            case _Watch(handle=handle):
                handles[handle.ref] = handle
                context.watch(handle.ref)
            case Down(ref=ref):
                stopped = handles.pop(ref, None)
                if stopped is not None:
                    await stopped._release()
                    await stopped._forget_child()
