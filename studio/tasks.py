"""Work off the UI thread: one cancellable background task with progress, per session.

The worker runs in a plain thread. Every state change it makes is handed to `dispatch`,
which in a served page schedules it on that session's Bokeh document (so widgets update
under the document lock) and elsewhere (Jupyter, tests) runs it directly.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable

import param


class Cancelled(Exception):
    """Raised inside the worker's progress callback once the user pressed Cancel."""


def session_dispatcher() -> Callable[[Callable[[], None]], None]:
    """A function that runs a callback on the current session's document (or directly).

    Its `closed()` tells whether the page has gone (no browser connected), so a worker can
    stop at once instead of waiting for Bokeh to expire the session (~15 s later).
    """
    import panel as pn
    from panel.io.state import set_curdoc

    doc = pn.state.curdoc
    if doc is None or doc.session_context is None:
        return lambda fn: fn()

    def closed() -> bool:
        ctx = doc.session_context
        if ctx is None or ctx.destroyed:
            return True
        session = getattr(ctx, "_session", None)  # bokeh ServerSession; no public connection count
        return session is not None and getattr(session, "connection_count", 1) == 0

    def dispatch(fn):
        if closed():
            return  # the page was closed: nobody to update
        with set_curdoc(doc):
            pn.state.execute(fn, schedule=True)

    dispatch.closed = closed
    return dispatch


class BackgroundTask(param.Parameterized):
    """State of one background job: running flag, progress, message, error.

    `start(work, on_done)` runs `work(progress)` in a thread, where `progress(step, total,
    text=None)` reports progress (and a status line) and raises `Cancelled` after `cancel()`. `on_done(result)` runs via
    `dispatch` when the work returns.
    """

    running = param.Boolean(default=False, constant=True)
    step = param.Integer(default=0, constant=True)
    total = param.Integer(default=1, constant=True)
    message = param.String(default="", doc="Last status line")
    error = param.String(default="", doc="Last error, shown in the page")

    def __init__(self, dispatch=None, **params):
        super().__init__(**params)
        self.dispatch = dispatch
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, work: Callable, on_done: Callable, label: str = "Working") -> bool:
        """Start `work` in a thread unless one is running; returns whether it started."""
        if self.running:
            return False
        dispatch = self.dispatch or session_dispatcher()
        self._cancel.clear()
        with param.edit_constant(self):
            self.param.update(running=True, step=0, total=1)
        self.param.update(message=f"{label}…", error="")

        page_closed = getattr(dispatch, "closed", lambda: False)

        def progress(step: int, total: int, text: str | None = None) -> None:
            if self._cancel.is_set() or page_closed():
                raise Cancelled()
            dispatch(lambda: self._set_progress(step, total, text))

        def run():
            try:
                result = work(progress)
            except Cancelled:
                dispatch(lambda: self._finish(message="Cancelled"))
            except Exception as exc:  # noqa: BLE001 - any failure must reach the page, not kill it
                text = str(exc).strip() or type(exc).__name__
                if not _is_user_error(exc):
                    traceback.print_exc()
                    text = f"{type(exc).__name__}: {text}"
                dispatch(lambda: self._finish(message="Failed", error=text))
            else:
                def done():
                    try:
                        on_done(result)
                    except Exception as exc:  # noqa: BLE001
                        traceback.print_exc()
                        self._finish(message="Failed", error=f"{type(exc).__name__}: {exc}")
                    else:
                        self._finish(message=f"{label}: done")
                dispatch(done)

        self._thread = threading.Thread(target=run, name=f"studio-{label}", daemon=True)
        self._thread.start()
        return True

    def cancel(self) -> None:
        """Ask the worker to stop at its next progress report."""
        if self.running:
            self._cancel.set()
            self.message = "Cancelling…"

    def join(self, timeout: float | None = None) -> None:
        """Wait for the worker thread (tests, shutdown)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _set_progress(self, step: int, total: int, text: str | None = None) -> None:
        with param.edit_constant(self):
            self.param.update(step=int(step), total=max(int(total), 1))
        if text:
            self.message = text

    def _finish(self, message: str, error: str = "") -> None:
        with param.edit_constant(self):
            self.running = False
        self.param.update(message=message, error=error)


def _is_user_error(exc: Exception) -> bool:
    try:
        from core.errors import UserError
    except ImportError:
        return False
    return isinstance(exc, UserError)
