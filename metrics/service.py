"""`metrics run`: the engine on a schedule (APScheduler), with its lock, stopped by SIGTERM/Ctrl-C.

At start the process takes the state folder's lock (a second process on the plant gets
``BusyError``), reconciles the whole history once (chunked), then runs ``Engine.run_once``
every ``metrics.interval_s`` seconds: the current hour, shift and day are at most one interval
behind the readings. A run that overlaps the next is not started twice (``max_instances=1``,
``coalesce``).
"""

from __future__ import annotations

import logging
import signal
import threading

from greenfoundry.metrics.engine import Engine
from greenfoundry.metrics.state import Lock, State

log = logging.getLogger(__name__)


class MetricsService:
    """The engine in a background scheduler; ``stop()`` ends it after the run in progress."""

    def __init__(self, cfg, store=None, stopped: threading.Event | None = None, clock=None):
        self.cfg = cfg
        self.lock = Lock(cfg.metrics.state_dir).acquire()
        kw = {"clock": clock} if clock is not None else {}
        self.engine = Engine(cfg, store=store, state=State(cfg.metrics.state_dir), **kw)
        self.stopped = stopped or threading.Event()
        self.engine.stop = self.stopped
        self.ready = threading.Event()  # the start-up reconcile is done
        self.error: BaseException | None = None
        self.runs = 0
        self._scheduler = None
        self._guard = threading.Lock()

    def _tick(self) -> None:
        if self.stopped.is_set():
            return
        with self._guard:
            try:
                result = self.engine.run_once()
                self.runs += 1
                log.debug("metrics run: %s", result)
            except Exception as exc:  # a run that fails is logged; the next one tries again
                self.error = exc
                log.error("metrics run failed: %s", exc)

    def start(self) -> MetricsService:
        from apscheduler.schedulers.background import BackgroundScheduler

        with self._guard:
            result = self.engine.reconcile()
        if self.stopped.is_set():
            return self
        log.info("metrics: reconciled the history: %s", result)
        self.ready.set()
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._scheduler.add_job(
            self._tick,
            "interval",
            seconds=self.cfg.metrics.interval_s,
            max_instances=1,
            coalesce=True,
            id="metrics",
        )
        self._scheduler.start()
        threading.Thread(target=self._tick, daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
        with self._guard:
            self.engine.close()
        self.lock.release()


def run_foreground(cfg) -> int:
    """`greenfoundry metrics run`: until SIGTERM or Ctrl-C."""
    done = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: done.set())
    service = None
    try:
        service = MetricsService(cfg, stopped=done)
        log.info("metrics: plant %s, state %s", cfg.plant.id, cfg.metrics.state_dir)
        service.start()
        while not done.wait(1.0):
            pass
    except KeyboardInterrupt:
        done.set()
    finally:
        signal.signal(signal.SIGTERM, previous)
        if service is not None:
            service.stop()
    return 0
