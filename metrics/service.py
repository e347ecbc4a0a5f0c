"""`metrics run`: the engine on a schedule (APScheduler), with its lock, stopped by SIGTERM/Ctrl-C.

At start the process takes the state folder's lock (a second process on the plant gets
``BusyError``), reconciles the whole history once (chunked), then runs ``Engine.run_once``
every ``metrics.interval_s`` seconds: the current hour, shift and day are at most one interval
behind the readings. A run that overlaps the next is not started twice (``max_instances=1``,
``coalesce``).

The same scheduler runs, each as its own job so a long rollup run never delays an alert:

* the alerts (``alerts.engine.AlertEngine.tick``) every ``alerts.interval_s`` (10 s), from the
  first second on: they read the raw readings, not the rollups, so they need not wait for the
  start-up reconcile;
* the rolling grade (``grade.rolling.run_due``) and the monthly snapshot
  (``grade.snapshot.run_due``) once the reconcile is done and then every ``GRADE_INTERVAL_S``:
  the grade of today is recomputed (late data, an expiring declaration), a day or a month that
  was missed while the service was down is caught up, and a new snapshot is sent through the
  report's channels by the alerts' dispatcher (one outbox per plant).

Each job logs and counts its own failures (``errors``); none stops the others.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
import time

from greenfoundry.metrics.engine import Engine
from greenfoundry.metrics.state import Lock, State

log = logging.getLogger(__name__)

GRADE_INTERVAL_S = 3600  # the rolling grade and the snapshot's catch-up run this often


class MetricsService:
    """The engine in a background scheduler; ``stop()`` ends it after the run in progress."""

    def __init__(
        self,
        cfg,
        store=None,
        stopped: threading.Event | None = None,
        clock=None,
        alerts_clock=None,
    ):
        """``clock`` is the rollups' and the grade's now (epoch seconds); ``alerts_clock`` the
        alerts' (default: the same). The demo gives the alerts the simulator's plant time."""
        self.cfg = cfg
        self.lock = Lock(cfg.metrics.state_dir).acquire()
        kw = {"clock": clock} if clock is not None else {}
        self.engine = Engine(cfg, store=store, state=State(cfg.metrics.state_dir), **kw)
        self.stopped = stopped or threading.Event()
        self.engine.stop = self.stopped
        self.ready = threading.Event()  # the start-up reconcile is done
        self.error: BaseException | None = None
        self.runs = 0
        self.errors = {"metrics": 0, "alerts": 0, "grade": 0, "snapshot": 0}
        self._scheduler = None
        self._guard = threading.Lock()
        self._grade_guard = threading.Lock()
        self.clock = clock or time.time
        self.alerts = None  # the plant's alert engine, with the dispatcher of its channels
        self.dispatcher = None
        self.alert_ticks = 0
        self.grade_runs = 0
        if cfg.alerts is not None:
            from greenfoundry.alerts.dispatch import Dispatcher
            from greenfoundry.alerts.engine import AlertEngine

            self.dispatcher = Dispatcher(cfg.alerts.channels, cfg.alerts.state_dir)
            self.alerts = AlertEngine(
                cfg,
                store=self.engine.store,
                dispatcher=self.dispatcher,
                clock=alerts_clock or self.clock,
            )
            # A long catch-up (a service back after days) stops after its chunk in progress.
            self.alerts.stop = self.stopped

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
                self.errors["metrics"] += 1
                log.error("metrics run failed: %s", exc)

    def _alerts_tick(self) -> None:
        if self.stopped.is_set() or self.alerts is None:
            return
        try:
            result = self.alerts.tick()
            self.alert_ticks += 1
            log.debug("alerts tick: %s", result)
        except Exception as exc:  # logged and counted; the next tick evaluates the same minutes
            self.errors["alerts"] += 1
            log.error("alerts tick failed: %s", exc)

    def _grade_tick(self) -> None:
        """The rolling grade of today (and days missed), then any monthly snapshot due."""
        if self.stopped.is_set():
            return
        from greenfoundry.grade import rolling, snapshot

        now = dt.datetime.fromtimestamp(self.clock(), tz=dt.timezone.utc)
        with self._grade_guard:
            try:
                due = rolling.run_due(self.cfg, now, store=self.engine.store, stop=self.stopped)
                self.grade_runs += 1
                self.errors["grade"] += len(due.failed)
            except Exception as exc:
                self.errors["grade"] += 1
                log.error("rolling grade failed: %s", exc)
            try:
                snapshot.run_due(
                    self.cfg,
                    now,
                    store=self.engine.store,
                    dispatcher=self.dispatcher,
                    stop=self.stopped,
                )
            except Exception as exc:
                self.errors["snapshot"] += 1
                log.error("monthly snapshot failed: %s", exc)

    def start(self) -> MetricsService:
        from apscheduler.schedulers.background import BackgroundScheduler

        # The first alert tick and the first grade run at once (next_run_time now), in the
        # scheduler's own pool, so shutdown(wait=True) waits for them as for any run.
        self._scheduler = BackgroundScheduler(timezone="UTC")
        if self.alerts is not None:
            self._scheduler.add_job(
                self._alerts_tick,
                "interval",
                seconds=self.cfg.alerts.interval_s,
                max_instances=1,
                coalesce=True,
                id="alerts",
                next_run_time=dt.datetime.now(dt.timezone.utc),
            )
        self._scheduler.start()
        with self._guard:
            try:
                result = self.engine.reconcile()
            except Exception as exc:
                # Said where the service is watched (`error`, the demo's line) and raised to the
                # caller, which stops the service: the alerts must not tick on alone.
                self.error = exc
                self.errors["metrics"] += 1
                log.error("metrics: the start-up reconcile failed: %s", exc)
                raise
        if self.stopped.is_set():
            return self
        log.info("metrics: reconciled the history: %s", result)
        self.ready.set()
        self._scheduler.add_job(
            self._tick,
            "interval",
            seconds=self.cfg.metrics.interval_s,
            max_instances=1,
            coalesce=True,
            id="metrics",
        )
        self._scheduler.add_job(
            self._grade_tick,
            "interval",
            seconds=GRADE_INTERVAL_S,
            max_instances=1,
            coalesce=True,
            id="grade",
            next_run_time=dt.datetime.now(dt.timezone.utc),
        )
        threading.Thread(target=self._tick, daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
        with self._guard:
            self.engine.close()
        if self.alerts is not None:
            self.alerts.close()
        if self.dispatcher is not None:
            self.dispatcher.close()
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
