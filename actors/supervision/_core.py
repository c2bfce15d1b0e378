"""The supervisor itself: one incarnation's children, restart decisions and orderly shutdown.

A supervisor is an actor. Its task owns a nursery with one task per running child incarnation.
Child exits come back as control messages, so every restart decision is taken in the supervisor's
own task, one at a time. Delayed restarts wait in a heap; the supervisor sleeps until the earliest
one is due or a message arrives, so it stays responsive while it waits out a backoff.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from collections import deque
from typing import TYPE_CHECKING

import trio

from actors._errors import (
    ActorStartError,
    ActorStoppedError,
    ChildAlreadyExistsError,
    ChildNotFoundError,
    RestartIntensityError,
    SupervisorError,
)
from actors.runtime import ActorRef, Ask, ExitReason, Shutdown, is_abnormal
from actors.runtime.lowlevel import StopRequest, behavior_for, log_exit, new_cell
from actors.supervision._child import Child, ChildExited, ChildStatus
from actors.supervision._spec import ChildSpec, Restart, Strategy, SupervisorSpec

if TYPE_CHECKING:
    from actors.runtime.lowlevel import ActorCell, Behavior

logger = logging.getLogger("actors.supervision")

_sequence = itertools.count()


def should_restart(restart: Restart, reason: ExitReason) -> bool:
    """OTP's rule: permanent always, transient after an abnormal exit, temporary never."""
    if restart is Restart.PERMANENT:
        return True
    if restart is Restart.TRANSIENT:
        return is_abnormal(reason)
    return False


class SupervisorCore:
    """The state of one supervisor incarnation. Reached through the ``Supervisor`` handle."""

    def __init__(self, spec: SupervisorSpec, cell: ActorCell) -> None:
        self.spec = spec
        self.cell = cell
        self.ref = cell.ref
        self.system = cell.system
        self.nursery: trio.Nursery | None = None
        # Insertion order is start order. Keys: the spec id, or the ref for dynamic children.
        self.children: dict[object, Child] = {}
        self.by_ref: dict[ActorRef, Child] = {}
        self.restart_times: deque[float] = deque()
        self.total_restarts = 0
        self.closing = False
        # (due time, tie-breaker, children to restart in start order)
        self._due: list[tuple[float, int, list[Child]]] = []
        self._template_behavior: Behavior | None = None

    @property
    def label(self) -> str:
        return self.cell.label

    # -- starting --------------------------------------------------------------------------------

    def _new_child(self, spec: ChildSpec, args: tuple[object, ...], name: str | None) -> Child:
        if self.spec.strategy is Strategy.SIMPLE_ONE_FOR_ONE and args is spec.args:
            # Behaviors are immutable: the children spawned from the template without arguments
            # of their own share one. Only those: a cache by child id would keep a behavior for
            # every dynamic child ever started (one per subscription), and would hand a child
            # started again under a deleted child's id the deleted child's behavior.
            behavior = self._template_behavior
            if behavior is None:
                behavior = self._template_behavior = behavior_for(spec.start, args)
        else:
            behavior = behavior_for(spec.start, args)
        cell = new_cell(
            self.system,
            behavior,
            name=name,
            mailbox=spec.mailbox,
            shutdown=spec.shutdown,
            owner=self,
        )
        key: object = cell.ref if self.spec.strategy is Strategy.SIMPLE_ONE_FOR_ONE else spec.id
        return Child(key, spec, behavior, cell)

    async def start_new(self, spec: ChildSpec, args: tuple[object, ...], name: str | None) -> Child:
        """Start a new child; if it fails to start, nothing is kept and ActorStartError rises."""
        self._check_open()
        child = self._new_child(spec, args, name)
        self.children[child.key] = child
        self.by_ref[child.ref] = child
        try:
            await self._start_incarnation(child, None, initial=True)
        except ActorStartError as error:
            self._forget(child)
            child.cell.finalize(child.last_exit or Shutdown("failed to start"))
            logger.error(
                "%s: child %s failed to start: %r",
                self.label,
                spec.id,
                error.__cause__,
                extra={"actor": child.cell.label},
            )
            raise
        return child

    async def _start_incarnation(
        self, child: Child, previous: ExitReason | None, *, initial: bool
    ) -> bool:
        """Start one incarnation and wait until it is ready; False if a restart failed to start."""
        assert self.nursery is not None
        cell = child.cell
        child.running = True
        child.started_at = trio.current_time()
        child.status = ChildStatus.STARTING if initial else ChildStatus.RUNNING
        cell.begin_start(restart=not initial)
        # The cell tells incarnation_ended when this task ends.
        self.nursery.start_soon(
            cell.run_incarnation, child.behavior, previous, child, name=cell.label
        )
        try:
            await cell.wait_started()
        except ActorStartError:
            if initial:
                raise
            # Its exit arrives as a message and is handled like any other crash.
            return False
        if child.status is ChildStatus.STARTING:
            child.status = ChildStatus.RUNNING
        return True

    def incarnation_ended(self, record: object, incarnation: int, reason: ExitReason) -> None:
        """A child's incarnation ended (called in the child's task, by its cell)."""
        child = record
        assert isinstance(child, Child)
        if child.cell.incarnation == incarnation:
            child.running = False
            child.last_exit = reason
            if child.exited is not None:
                child.exited.set()
                child.exited = None
        self.cell.mailbox.put_control(ChildExited(child, incarnation, reason))

    # -- the event loop --------------------------------------------------------------------------

    async def loop(self) -> ExitReason:
        """Handle child exits, due restarts and stop requests until asked to stop."""
        mailbox = self.cell.mailbox
        while True:
            await self._restart_due()
            control = mailbox.take_control()
            if isinstance(control, ChildExited):
                await self._child_exited(control)
                continue
            if isinstance(control, StopRequest):
                return control.exit_reason()
            if control is not None:
                continue  # a Down from something the supervisor was made to watch: nothing to do
            if len(mailbox):
                self._refuse_messages()
                continue
            deadline = self._due[0][0] if self._due else math.inf
            with trio.move_on_at(deadline):
                await mailbox.wait()

    def _refuse_messages(self) -> None:
        mailbox = self.cell.mailbox
        for message in mailbox.take_batch(len(mailbox)):
            error = SupervisorError(f"{self.label} takes no messages; use its Supervisor handle")
            if type(message) is Ask:
                message.fail(error)
            else:
                logger.warning(
                    "%s dropped a message it cannot handle: %r",
                    self.label,
                    message,
                    extra={"actor": self.label},
                )

    async def _child_exited(self, event: ChildExited) -> None:
        child = event.child
        if event.incarnation != child.cell.incarnation:
            return  # an incarnation the supervisor already dealt with
        if child.status is ChildStatus.STARTING and child.cell.start_failed:
            return  # whoever is starting it reports the failure
        if child.status not in (ChildStatus.RUNNING, ChildStatus.STARTING):
            return  # terminated by the supervisor, which handled the exit itself
        child.status = ChildStatus.RUNNING
        reason = event.reason
        if child.cell.stop_requested:
            self._retire(child, reason)
            return
        if not should_restart(child.spec.restart, reason):
            log_exit(child.cell.label, reason, f"{child.spec.restart.value} child: not restarted")
            self._retire(child, reason)
            return
        await self._restart_after_exit(child, reason)

    # -- restarting ------------------------------------------------------------------------------

    def _count_restart(self, child: Child, reason: ExitReason) -> None:
        now = trio.current_time()
        times = self.restart_times
        times.append(now)
        while times and now - times[0] >= self.spec.within:
            times.popleft()
        if len(times) > self.spec.max_restarts:
            log_exit(child.cell.label, reason, "restart intensity reached")
            raise RestartIntensityError(
                f"{self.label} gave up: more than {self.spec.max_restarts} restarts within "
                f"{self.spec.within} s (last: child {child.spec.id!r}, {reason!r})"
            )

    def _group(self, child: Child) -> list[Child]:
        strategy = self.spec.strategy
        if strategy is Strategy.ONE_FOR_ALL:
            return list(self.children.values())
        if strategy is Strategy.REST_FOR_ONE:
            ordered = list(self.children.values())
            return ordered[ordered.index(child) :]
        return [child]

    async def _restart_after_exit(self, child: Child, reason: ExitReason) -> None:
        self._count_restart(child, reason)
        now = trio.current_time()
        backoff = child.spec.backoff
        if now - child.started_at >= backoff.reset_after:
            child.attempt = 0
        delay = backoff.delay(child.attempt, self.system.random)
        child.attempt += 1
        log_exit(
            child.cell.label,
            reason,
            f"restarting in {delay:.3f} s ({self.spec.strategy.value})",
            level=child.spec.crash_log_level,
            context=f"{child.spec.id} ({child.cell.label})",
        )
        child.cell.report_restart(reason, delay)
        group: list[Child] = []
        for member in reversed(self._group(child)):
            if member is not child and member.status in (ChildStatus.RUNNING, ChildStatus.STARTING):
                exit_reason, on_its_own = await self._terminate(
                    member, f"restart: {self.spec.strategy.value}"
                )
                if member.cell.start_failed:
                    # Stopped during its first start (start_child/spawn still waiting for it):
                    # that caller gets ActorStartError and forgets the child, so it must not be
                    # restarted here behind a ref the caller finalizes.
                    continue
                if (
                    member.cell.stop_requested
                    or member.spec.restart is Restart.TEMPORARY  # bystanders are not restarted
                    or (on_its_own and not should_restart(member.spec.restart, exit_reason))
                ):
                    self._retire(member, exit_reason)
                    continue
            elif member is not child and member.status is not ChildStatus.RESTARTING:
                continue
            if member.status is ChildStatus.STOPPED or not member.ref.alive:
                # Retired (terminate_child, or a stop through its ref) while this loop awaited
                # a sibling's termination: restarting it would run a task behind a dead ref.
                continue
            member.status = ChildStatus.RESTARTING
            member.cell.mark_restarting()
            group.append(member)
        group.reverse()
        self.total_restarts += 1
        if delay <= 0:
            await self._restart_group(group)
        else:
            heapq.heappush(self._due, (now + delay, next(_sequence), group))

    async def _restart_due(self) -> None:
        while self._due and self._due[0][0] <= trio.current_time():
            _, _, group = heapq.heappop(self._due)
            await self._restart_group(group)

    async def _restart_group(self, group: list[Child]) -> None:
        for member in group:
            if member.status is not ChildStatus.RESTARTING:
                continue  # stopped, retired or restarted in the meantime
            if member.cell.stop_requested:
                # Its ref was stopped after its incarnation ended but before it was marked
                # RESTARTING (for example while one_for_all stopped its siblings).
                # child_stop_requested only retires RESTARTING children, so honour it here.
                self._retire(member, member.last_exit or Shutdown("stopped while restarting"))
                continue
            if not await self._start_incarnation(member, member.last_exit, initial=False):
                return  # the failure's exit message decides what happens to the rest

    # -- stopping children -----------------------------------------------------------------------

    async def _terminate(self, child: Child, detail: str) -> tuple[ExitReason, bool]:
        """Stop a running incarnation within its grace period.

        Returns how it ended, and whether it had already ended on its own before being asked.
        """
        on_its_own = not child.running
        if child.status is ChildStatus.RESTARTING:
            # Its crash was dealt with when the restart was scheduled; what ends it now is this
            # stop, so watchers and links see a shutdown, not the old crash again.
            child.last_exit = Shutdown(detail)
        if child.running:
            child.status = ChildStatus.TERMINATING
            child.cell.terminate(detail)
            if child.running:
                # Two tasks may terminate the same child at once (terminate_child racing a
                # group restart): they share one event.
                if child.exited is None:
                    child.exited = trio.Event()
                await child.exited.wait()
        if child.last_exit is None:  # never ran: stopped while waiting to restart
            child.last_exit = Shutdown(detail)
        return child.last_exit, on_its_own

    def _retire(self, child: Child, reason: ExitReason) -> None:
        """The child will not run again: end its ref; keep its spec only where OTP keeps it."""
        child.cell.finalize(reason)
        child.status = ChildStatus.STOPPED
        self.by_ref.pop(child.ref, None)
        if child.spec.restart is Restart.TEMPORARY or isinstance(child.key, ActorRef):
            self.children.pop(child.key, None)

    def _forget(self, child: Child) -> None:
        self.children.pop(child.key, None)
        self.by_ref.pop(child.ref, None)

    def child_healthy(self, ref: ActorRef) -> None:
        """A child proved itself: its next restart waits the backoff's initial delay."""
        child = self.by_ref.get(ref)
        if child is not None:
            child.attempt = 0

    def child_stop_requested(self, ref: ActorRef) -> None:
        """Someone asked a child to stop for good; a child waiting to restart stops at once."""
        child = self.by_ref.get(ref)
        if child is not None and child.status is ChildStatus.RESTARTING:
            self._retire(child, Shutdown("stopped while restarting"))

    def _finish_shutdown(self, child: Child) -> None:
        # End each child's ref as soon as that child has stopped, not after all its siblings:
        # a stopped child must not look alive (no Down, name still taken) for their grace periods.
        if child.ref.alive:
            child.cell.finalize(child.last_exit or Shutdown("supervisor shutdown"))
        child.status = ChildStatus.STOPPED

    async def shutdown_children(self) -> None:
        """Stop every child in reverse start order (all at once for dynamic children)."""
        self.closing = True
        self._due.clear()
        children = list(self.children.values())
        if self.spec.strategy is Strategy.SIMPLE_ONE_FOR_ONE:
            for child in children:
                if child.running:
                    child.status = ChildStatus.TERMINATING
                    child.cell.terminate("supervisor shutdown")
            for child in children:
                await self._terminate(child, "supervisor shutdown")
                self._finish_shutdown(child)
        else:
            for child in reversed(children):
                await self._terminate(child, "supervisor shutdown")
                self._finish_shutdown(child)
        for child in reversed(children):
            self._finish_shutdown(child)
        self.children.clear()
        self.by_ref.clear()

    # -- administration (called from other tasks through the Supervisor handle) ------------------

    def _check_open(self) -> None:
        if self.closing:
            raise ActorStoppedError(f"{self.label} is shutting down")

    def find(self, key: str | ActorRef) -> Child:
        child = self.by_ref.get(key) if isinstance(key, ActorRef) else self.children.get(key)
        if child is None:
            raise ChildNotFoundError(f"{self.label} has no child {key!r}")
        return child

    async def start_child(self, spec: ChildSpec) -> ActorRef:
        if self.spec.strategy is Strategy.SIMPLE_ONE_FOR_ONE:
            raise SupervisorError("a simple_one_for_one supervisor starts children with spawn()")
        existing = self.children.get(spec.id)
        if existing is not None:
            state = "already present" if existing.status is ChildStatus.STOPPED else "running"
            raise ChildAlreadyExistsError(f"child {spec.id!r} of {self.label} is {state}")
        child = await self.start_new(spec, spec.args, spec.name)
        return child.ref

    async def spawn(self, args: tuple[object, ...], name: str | None) -> ActorRef:
        if self.spec.strategy is not Strategy.SIMPLE_ONE_FOR_ONE:
            raise SupervisorError("spawn() is for simple_one_for_one supervisors; use start_child")
        template = self.spec.children[0]
        child = await self.start_new(
            template, template.args + args if args else template.args, name
        )
        return child.ref

    async def terminate_child(self, key: str | ActorRef) -> None:
        self._check_open()
        child = self.find(key)
        if child.status is ChildStatus.STOPPED:
            await trio.lowlevel.checkpoint()
            return
        reason, _ = await self._terminate(child, "terminate_child")
        if child.ref.alive:
            self._retire(child, reason)

    async def restart_child(self, key: str) -> ActorRef:
        self._check_open()
        # Checked before the lookup: dynamic children are keyed by ref, so an id lookup would
        # fail first with ChildNotFoundError instead of OTP's {error, simple_one_for_one}.
        if self.spec.strategy is Strategy.SIMPLE_ONE_FOR_ONE:
            raise SupervisorError("restart_child does not apply to simple_one_for_one children")
        child = self.find(key)
        if child.status is not ChildStatus.STOPPED:
            raise ChildAlreadyExistsError(f"child {key!r} of {self.label} is {child.status.value}")
        # The restarted child keeps its place in the start order, as in OTP's children list,
        # so rest_for_one and the reverse-order shutdown still see it where it was. start_new
        # assigns the same key, which keeps the dict position; a failed start restores it.
        order = list(self.children)
        try:
            fresh = await self.start_new(child.spec, child.spec.args, child.spec.name)
        except BaseException:
            self._put_back(child, order)  # keep the spec, as OTP does
            raise
        return fresh.ref

    def _put_back(self, child: Child, order: list[object]) -> None:
        """Put a child's record back under its key, at its place in ``order``."""
        self.children[child.key] = child
        rank = {key: index for index, key in enumerate(order)}
        ordered = sorted(self.children.items(), key=lambda item: rank.get(item[0], len(rank)))
        self.children.clear()
        self.children.update(ordered)

    async def delete_child(self, key: str) -> None:
        self._check_open()
        # As in restart_child, refuse simple_one_for_one before looking the key up.
        if self.spec.strategy is Strategy.SIMPLE_ONE_FOR_ONE:
            raise SupervisorError("delete_child does not apply to simple_one_for_one children")
        child = self.find(key)
        if child.status is not ChildStatus.STOPPED:
            raise ChildAlreadyExistsError(f"child {key!r} of {self.label} is {child.status.value}")
        self._forget(child)
        await trio.lowlevel.checkpoint()


async def run_supervisor(spec: SupervisorSpec, cell: ActorCell) -> ExitReason:
    """Run one supervisor incarnation: start the children in order, supervise, shut down."""
    core = SupervisorCore(spec, cell)
    cell.instance = core
    failure: Exception | None = None
    reason: ExitReason = Shutdown()
    async with trio.open_nursery() as nursery:
        core.nursery = nursery
        try:
            if spec.strategy is not Strategy.SIMPLE_ONE_FOR_ONE:
                for child_spec in spec.children:
                    await core.start_new(child_spec, child_spec.args, child_spec.name)
            cell.mark_started()
            reason = await core.loop()
        except (RestartIntensityError, ActorStartError) as error:
            failure = error
        finally:
            with trio.CancelScope(shield=True):
                await core.shutdown_children()
    if failure is not None:
        raise failure
    return reason
