"""What Client, Monitor, Watcher and Election share: events (iterator, async iterator,
callback), stopping whatever is still running at interpreter exit, and (all but Election,
which campaigns instead of starting) context management and the phase."""

from __future__ import annotations

import asyncio
import atexit
import collections
import concurrent.futures
import logging
import threading
import weakref
from typing import Any, AsyncIterator, Callable, Deque, Iterator, Optional, Protocol, TypeVar

from ._types import Event, PhaseName
from .errors import ForkedError, HeartbeaterError, StoppedError

_log = logging.getLogger("heartbeater")

EventCallback = Callable[[Event], object]
C = TypeVar("C", bound=EventCallback)
H = TypeVar("H", bound="Handle")


class _NativeEventSource(Protocol):
    def next_event(self, timeout: Optional[float] = None) -> Optional[dict[str, Any]]: ...
    def set_callback(self, callback: Callable[[dict[str, Any]], None]) -> None: ...
    @property
    def dropped_events(self) -> int: ...
    @property
    def callback_errors(self) -> int: ...


class _NativeEvents(_NativeEventSource, Protocol):
    @property
    def phase(self) -> str: ...


class _Deliver:
    """Turns the native dict into an Event before calling the user's callback; its repr is
    the user's callback so that the log line for a raising callback names it."""

    __slots__ = ("callback",)

    def __init__(self, callback: EventCallback) -> None:
        self.callback = callback

    def __call__(self, native: dict[str, Any]) -> None:
        self.callback(Event._from_native(native))

    def __repr__(self) -> str:
        return repr(self.callback)


# Started handles, stopped at interpreter exit so that peers see `left`, not `dead` (and an
# election's next candidate leads at once).
_running: weakref.WeakSet[EventSource] = weakref.WeakSet()
_running_lock = threading.Lock()


@atexit.register
def _stop_all_at_exit() -> None:
    with _running_lock:
        handles = list(_running)
    for h in handles:
        try:
            h._stop_at_exit()
        except ForkedError:
            # A forked child exiting: the handle is the parent's, and the engine says so.
            pass
        except HeartbeaterError as e:
            _log.warning("stopping %r at exit failed: %s", h, e)


def timeout_arg(timeout: Optional[float]) -> Optional[float]:
    """A ``timeout`` argument: seconds (int or float) or ``None``."""
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))):
        raise TypeError(f"timeout must be a number of seconds or None, got {type(timeout).__name__}")
    return None if timeout is None else float(timeout)


class EventSource:
    """Base of every handle (not made directly): its events and its stop at exit."""

    _native: _NativeEventSource
    #: Seconds an ``aevents()`` worker waits per pull; bounds how late it notices cancellation.
    _AEVENTS_SLICE = 0.2

    def __init__(self) -> None:
        # Events a cancelled aevents() pull received after its awaiter was gone.
        self._pending: Deque[Event] = collections.deque()

    # Subclasses call these when they start running and when they stop.
    def _started(self) -> None:
        with _running_lock:
            _running.add(self)

    def _stopped(self) -> None:
        with _running_lock:
            _running.discard(self)

    def _stop_at_exit(self) -> None:
        raise NotImplementedError

    def on_event(self, callback: C) -> C:
        """Calls ``callback(event)`` for every event, on a delivery thread of heartbeater's
        own (with the GIL). One callback per handle; ``events()`` is then unavailable.
        A callback that raises is logged to the ``heartbeater`` logger and counted in
        ``callback_errors``; delivery goes on. Returns the callback (usable as a decorator).
        """
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        self._native.set_callback(_Deliver(callback))
        return callback

    @property
    def callback_errors(self) -> int:
        """How many times this handle's callback raised."""
        return self._native.callback_errors

    @property
    def dropped_events(self) -> int:
        """Events lost because nobody consumed them fast enough (the queue keeps the newest)."""
        return self._native.dropped_events

    def next_event(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next event, waiting up to ``timeout`` seconds (``None``: until one comes).
        ``None`` on timeout, and ``None`` at the end of the stream: once the handle is stopped
        and every event queued before the stop has been read. After ``stop()`` has returned
        every ``None`` is the end (``phase == "stopped"``). The GIL is released while
        waiting. :class:`ForkedError` in a forked child."""
        seconds = timeout_arg(timeout)
        if self._pending:
            return self._pending.popleft()
        try:
            native = self._native.next_event(seconds)
        except StoppedError:  # the engine's end of the stream
            return None
        return None if native is None else Event._from_native(native)

    def events(self, timeout: Optional[float] = None) -> Iterator[Event]:
        """Iterates over events until the end of the stream (stopped and drained), or until no
        event came within ``timeout`` seconds (``None``: wait as long as it takes)."""
        while True:
            ev = self.next_event(timeout)
            if ev is None:
                return
            yield ev

    async def aevents(self) -> AsyncIterator[Event]:
        """``async for ev in handle.aevents()``: never blocks the event loop (each wait runs
        in a worker thread, in short slices) and ends when the handle stops. If the consuming
        task is cancelled mid-wait, an event that arrives anyway is kept for the next pull."""
        loop = asyncio.get_running_loop()
        # A worker of its own: the loop's default executor may be busy with user work.
        executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="heartbeater-aevents")
        try:
            while True:
                if self._pending:
                    yield self._pending.popleft()
                    continue
                pull = executor.submit(self._native.next_event, self._AEVENTS_SLICE)
                try:
                    native = await asyncio.wrap_future(pull, loop=loop)
                except StoppedError:
                    return
                except asyncio.CancelledError:
                    pull.add_done_callback(self._keep_late_event)
                    raise
                if native is not None:
                    yield Event._from_native(native)
        finally:
            executor.shutdown(wait=False)

    def _keep_late_event(self, pull: concurrent.futures.Future[Optional[dict[str, Any]]]) -> None:
        if pull.cancelled() or pull.exception() is not None:
            return
        native = pull.result()
        if native is not None:
            self._pending.appendleft(Event._from_native(native))


class Handle(EventSource):
    """Base of Client, Monitor and Watcher (not made directly): a start, a stop, a phase."""

    _native: _NativeEvents

    def __enter__(self: H) -> H:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        stop_leaving_forked(self.stop)

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    @property
    def phase(self) -> PhaseName:
        """Where the handle is in its life, as the engine says: ``idle``, ``starting``,
        ``running``, ``stopped``, or ``forked`` (this process is a fork of the one that made
        it; every call then raises :class:`ForkedError`)."""
        return self._native.phase  # type: ignore[return-value]


def stop_leaving_forked(stop: Callable[[], None]) -> None:
    """``stop()`` for a ``with`` block's exit. A forked child leaving the parent's block
    (sys.exit, an exception) leaves the handle alone: it belongs to the parent, which stops it."""
    try:
        stop()
    except ForkedError:
        pass
