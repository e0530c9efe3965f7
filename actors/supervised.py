"""The child's side of supervision: an actor that reports its own exit to its supervisor.

pykka has no links, so the only road from a death to a restart is the dying actor
telling its supervisor `ChildExited` from its last hook. This module owns that
report, and the hand-over by which a supervisor, while it runs a child's start
function, tells the actor being built whom to report to and waits for its
`on_start`. It does not decide restarts (`actors/supervisor.py` does).
"""

from __future__ import annotations

import functools
import logging
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import pykka

from actors.messages import ChildExited

__all__ = ["StartClaim", "SupervisedActor", "describe_exception", "offer_supervision", "tell_if_alive"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class StartClaim:
    """A supervisor's offer to the actor built in its thread, and that actor's answer."""

    supervisor: pykka.ActorRef[Any]
    child_id: str
    urn: str | None = None  # set by the SupervisedActor that takes the offer
    started: threading.Event = field(default_factory=threading.Event)  # set when on_start ended
    start_error: str | None = None  # why on_start raised, once `started` is set


class SupervisedActor(pykka.ThreadingActor):
    """Base of every supervised actor: tells its supervisor `ChildExited` when it stops.

    The report goes out after `on_stop` (a clean exit, unless `stop_abnormally`
    was used), after `on_failure` (an exception in a `tell`), or after `on_start`
    raised (pykka then calls neither). Subclasses override those hooks freely and
    need not call `super()`: the report is wrapped around the outermost hook.

    The supervisor and child id come from the arguments, or else from the
    supervisor whose `ChildSpec.start` is building this actor, so a spec's
    `start` is just `lambda: MyActor.start(...)`.
    """

    def __init__(self, *, supervisor: pykka.ActorRef[Any] | None = None, child_id: str | None = None) -> None:
        super().__init__()
        claim = getattr(_offer, "claim", None)
        if claim is not None and claim.urn is None:
            claim.urn = self.actor_urn  # the first actor built inside `start()` is the child
        else:
            claim = None
        self._claim = claim
        self.supervisor_ref = supervisor if supervisor is not None else (claim.supervisor if claim else None)
        self.child_id = child_id or (claim.child_id if claim else type(self).__name__)
        self._exit: tuple[str, bool, str | None] = ("stopped", False, None)  # reason, abnormal, error
        self._hook_depth = 0
        self._exit_reported = False

    def stop_abnormally(self, reason: str, error: str | None = None) -> None:
        """Stop this actor after the messages already queued, reporting an abnormal exit."""
        self._exit = (reason, True, error)
        self.stop()

    # These three are wrapped too, by the _wrap_hooks call at the bottom of the module.
    def on_start(self) -> None:
        """Override freely; a raise here is reported as an abnormal exit."""

    def on_stop(self) -> None:
        """Override freely; the exit is reported after it returns."""

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Override freely; the crash is reported after it returns."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _wrap_hooks(cls)

    def _finish_start(self, error: str | None) -> None:
        if self._claim is not None:
            self._claim.start_error = error
            self._claim.started.set()
        if error is not None:
            # pykka runs neither on_stop nor on_failure after on_start raised, and marks
            # the actor dead only after this hook. Mark it now, as pykka will, so that
            # whoever hears the report sees a dead actor, as after the other two hooks.
            pykka.ActorRegistry.unregister(self.actor_ref)
            self.actor_stopped.set()
            self._report_exit()

    def _report_exit(self) -> None:
        if self._exit_reported:
            return
        self._exit_reported = True
        reason, abnormal, error = self._exit
        logger.debug("%s(%s) exited: %s%s", type(self).__name__, self.child_id, reason, f" ({error})" if error else "")
        if self.supervisor_ref is not None:
            tell_if_alive(self.supervisor_ref, ChildExited(self.child_id, reason, abnormal, error, self.actor_urn))


@contextmanager
def offer_supervision(supervisor: pykka.ActorRef[Any], child_id: str) -> Iterator[StartClaim]:
    """Within the block, the first SupervisedActor built in this thread becomes `child_id` of `supervisor`.

    A thread-local rather than an argument, so that `ChildSpec.start` stays a
    plain `Callable[[], ActorRef]` written before the supervisor exists.
    """
    claim = StartClaim(supervisor, child_id)
    _offer.claim = claim
    try:
        yield claim
    finally:
        _offer.claim = None


def describe_exception(exc: BaseException | None) -> str:
    """`"ValueError: bad input"`: the exception's type and message on one line."""
    if exc is None:
        return "unknown error"
    return "".join(traceback.format_exception_only(exc)).strip()


def tell_if_alive(ref: pykka.ActorRef[Any], message: Any) -> None:
    """`ref.tell(message)`, dropping the message (with a debug line) if the actor is gone."""
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        logger.debug("%s is gone; dropped %r", ref, message)


# Set only while a supervisor runs a ChildSpec.start in its own thread.
_offer = threading.local()


def _wrap_hooks(cls: type[SupervisedActor]) -> None:
    """Wrap the lifecycle hooks `cls` defines so that the outermost one reports the exit."""
    for name, wrap in (("on_start", _wrap_on_start), ("on_stop", _wrap_on_stop), ("on_failure", _wrap_on_failure)):
        hook = cls.__dict__.get(name)
        if hook is not None and not getattr(hook, "_reports_exit", False):
            wrapped = wrap(hook)
            wrapped._reports_exit = True  # type: ignore[attr-defined]
            setattr(cls, name, wrapped)


def _wrap_on_start(hook: Callable[[SupervisedActor], None]) -> Callable[[SupervisedActor], None]:
    @functools.wraps(hook)
    def on_start(self: SupervisedActor) -> None:
        self._hook_depth += 1
        error = None
        try:
            hook(self)
        except Exception as exc:
            error = describe_exception(exc)
            self._exit = ("failed to start", True, error)
            raise
        finally:
            self._hook_depth -= 1
            if self._hook_depth == 0:
                self._finish_start(error)

    return on_start


def _wrap_on_stop(hook: Callable[[SupervisedActor], None]) -> Callable[[SupervisedActor], None]:
    @functools.wraps(hook)
    def on_stop(self: SupervisedActor) -> None:
        self._hook_depth += 1
        try:
            hook(self)
        except Exception as exc:
            self._exit = ("failed to stop", True, describe_exception(exc))
            raise
        finally:
            self._hook_depth -= 1
            if self._hook_depth == 0:
                self._report_exit()

    return on_stop


def _wrap_on_failure(hook: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(hook)
    def on_failure(self: SupervisedActor, exception_type: Any, exception_value: Any, tb: Any) -> None:
        if self._hook_depth == 0:
            self._exit = ("crashed", True, describe_exception(exception_value))
        self._hook_depth += 1
        try:
            hook(self, exception_type, exception_value, tb)
        finally:
            self._hook_depth -= 1
            if self._hook_depth == 0:
                self._report_exit()

    return on_failure


# __init_subclass__ sees only the subclasses; SupervisedActor's own hooks report too.
_wrap_hooks(SupervisedActor)
