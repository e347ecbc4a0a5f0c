"""The alert engine: samples from the readings, the state machine, transitions written, notified.

``AlertEngine.tick(now_ns)`` evaluates every target of the plant (``AlertsConfig.targets``)
step by step on event time (the multiples of ``alerts.step_s``, 20 s by default; every whole
minute is one), from the persisted cursor up to the horizon:

* **Horizon.** A step ``t`` (its sample stands for the readings before ``t``; signals.py) is
  evaluated once ``now >= t + settle_s`` AND the plant has a reading at or after ``t`` (its
  newest reading, of any alert input): the engine never runs ahead of the data that has
  arrived, so an ingest that is catching up (a spool replay) does not make steps STALE that
  its readings are about to fill. When the plant has sent nothing for ``stale_after`` the
  horizon follows the wall clock alone (``now - settle_s``): a silent plant is STALE and its
  deadmen fire. A reading of event time ``e`` is in the first step after it and is first
  evaluated by the first tick at or after that step ``+ settle_s`` once a later reading is in:
  its notification comes at most ``step_s + settle_s + interval_s`` after the reading (40 s
  with the defaults 20 s / 10 s / 10 s, for a reading just after a step). At ``step_s`` 60
  this is the minute cadence (up to 80 s). Late data (after its step was evaluated) is not
  evaluated live again; a ``replay`` sees it.
* **First tick.** Of a new state (no cursor) it starts at ``now - 2 h`` (a step), not at the
  beginning of the history. A cursor of another ``step_s`` (changed across a restart) goes on
  from the step at or before it.
* **Catch-up.** Steps are evaluated in chunks of at most ``CHUNK_MIN`` minutes, each read,
  evaluated and committed on its own, so a long catch-up is bounded in memory and a kill loses
  at most the chunk in progress. Once ``stop`` (an event the owner sets at shutdown) is set, a
  tick ends after its chunk in progress.
* **Per chunk**: one bounded read per measurement (``signals.SignalReader``), every target's
  samples fed to ``machine.step`` in time order, then, in this order: the ``gf_alert`` points
  of its transitions (one per transition, idempotent: the same transition is the same point),
  the notifications handed to the dispatcher (durable once ``submit`` returns), and the states
  with the cursor committed in one transaction (``AlertStore.commit``). A crash after the
  dispatcher took a notification and before the commit makes the next tick evaluate those
  steps again and hand the same notification (same alert id, event and event time) once
  more: delivery is at least once, as the dispatcher's own. A crash before the hand-off loses
  nothing: the steps are evaluated again from the committed states.

``replay(start_ns, end_ns)`` evaluates the same way from a clean state (every target OK) without
committing, writing or sending, and returns the transitions: live ticks over the same readings
give the same transitions, alert ids included (each sample depends only on the readings of its
own window, not on how the steps were cut into ticks and chunks).

The metrics service calls ``run_due(cfg, now_ns)`` (or an engine's ``run_due``) every interval:
it ticks when ``alerts.interval_s`` has passed since the last tick.

Public API: ``AlertEngine``, ``TickResult``, ``run_due``, ``close_all``, ``transition_line``,
``MEASUREMENT``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from greenfoundry.alerts import machine
from greenfoundry.alerts.machine import AlertState, Sample, Transition
from greenfoundry.alerts.signals import NS, NS_PER_MIN, SignalReader
from greenfoundry.alerts.state import AlertStore
from greenfoundry.errors import ConfigError
from greenfoundry.store import line

log = logging.getLogger("greenfoundry.alerts")

MEASUREMENT = "gf_alert"
FIRST_TICK_NS = 2 * 3600 * NS  # a new state's first tick looks back this far
CHUNK_MIN = 6 * 60  # minutes evaluated per read and commit
UNITS = {"stack": "C", "furnace": "× tier limit", "deadman": "s"}


def _floor(ns: int, step_ns: int) -> int:
    return ns - ns % step_ns


@dataclass(frozen=True)
class TickResult:
    """What one tick (or replay) did: the steps ``(start_ns, end_ns]`` evaluated (None:
    nothing was due; ``minutes`` is their span in minutes of event time, ``steps`` how many
    steps of ``alerts.step_s``), the samples applied, its transitions, the notifications handed
    on and the ``gf_alert`` points written."""

    start_ns: int | None
    end_ns: int | None
    minutes: float = 0
    evaluations: int = 0  # samples applied: targets × steps with a sample
    transitions: tuple[Transition, ...] = ()
    notifications: int = 0
    points: int = 0
    requests: int = 0  # InfluxDB requests of the readings
    reason: str = ""  # why nothing was evaluated, when nothing was
    seconds: float = 0.0
    details: dict = field(default_factory=dict)
    steps: int = 0


def transition_line(
    plant_id: str, target, transition: Transition, state: AlertState, subject: str
) -> str:
    """The ``gf_alert`` point of one transition (schema: preamble of the session, README):
    tags plant, rule, target; the transition's fields; its event time as timestamp."""
    rule = target.rule
    fields: dict = {
        "alert_id": transition.alert_id or "",
        "state": transition.to_state,
        "from_state": transition.from_state,
        "event": transition.event or "",
        "severity": rule.severity,
        "kind": rule.kind,
    }
    if transition.value is not None:
        fields["value"] = float(transition.value)
    fields["limit"] = float(rule.above)
    fields["unit"] = UNITS.get(rule.kind, "")
    fields["message"] = subject
    since = getattr(transition, "since_ns", None)
    if since is None:
        since = _since(transition, state)
    if since is not None:
        fields["since_ns"] = int(since)
    if transition.event == "acknowledged" and state.acked_by:
        fields["acked_by"] = state.acked_by
    tags = {"plant": plant_id, "rule": rule.id, "target": target.key}
    return line(MEASUREMENT, tags, fields, transition.at_ns)


def _since(transition: Transition, state: AlertState) -> int | None:
    """When the condition of the transition began: the pending start of a firing alert, the
    start of the state entered otherwise."""
    if state.pending_since_ns is not None and transition.to_state in (machine.FIRING,):
        return state.pending_since_ns
    if transition.to_state == machine.STALE and state.firing_since_ns is not None:
        return state.firing_since_ns
    return state.since_ns


class AlertEngine:
    """The alerts of one plant (see the module docstring). ``clock`` gives now in epoch
    seconds (``time.time``)."""

    def __init__(
        self,
        cfg,
        store=None,
        alert_store=None,
        dispatcher=None,
        clock: Callable[[], float] | None = None,
    ):
        if cfg.alerts is None:
            raise ConfigError(f"{cfg.path}: the plant config has no alerts section")
        self.cfg = cfg
        self.acfg = cfg.alerts
        self.plant_id = cfg.plant.id
        if store is None:
            from greenfoundry.metrics.source import store_for_metrics

            store = store_for_metrics(cfg)
        self.store = store
        self.alert_store = (
            alert_store if alert_store is not None else AlertStore(self.acfg.state_dir)
        )
        self.step_ns = self.acfg.step_s * NS
        self.dispatcher = dispatcher
        self.clock = clock or time.time
        self.targets = self.acfg.targets(cfg)
        self.by_key = {f"{t.rule.id}|{t.key}": t for t in self.targets}
        # Validates the targets (a furnace rule's tier) once, at start.
        self.reader = SignalReader(cfg, store, self.acfg, self.targets)
        self.states: dict[str, AlertState] | None = None
        self.last_tick_s: float | None = None
        self._guard = threading.Lock()
        # Set by the engine's owner at shutdown (the metrics service's `stopped` event): a tick
        # ends after the chunk in progress, committed, instead of catching up to now, so a
        # service back after days waits for one chunk at stop, not the whole catch-up.
        self.stop: threading.Event | None = None

    # ---- live ----------------------------------------------------------------------------

    def _now_ns(self, now_ns: int | None) -> int:
        return int(now_ns) if now_ns is not None else int(self.clock() * NS)

    def tick(self, now_ns: int | None = None) -> TickResult:
        """Evaluate every step that is due (module docstring), chunk by chunk; return what
        was done."""
        with self._guard:
            return self._tick(self._now_ns(now_ns))

    def _tick(self, now: int) -> TickResult:
        started = time.perf_counter()
        requests0 = self.reader.requests
        dropped0 = dict(self.reader.dropped)
        cursor = self.alert_store.cursor_ns()
        if cursor is None:
            cursor = _floor(now - FIRST_TICK_NS, self.step_ns)
        elif cursor % self.step_ns:
            # A cursor of another step (step_s changed across a restart): the machine ignores
            # the samples at or before each state's last one, so going on from the step before
            # it evaluates nothing twice.
            cursor = _floor(cursor, self.step_ns)
        if self.states is None:
            self.states = self.alert_store.load()
        else:
            self.states = self.alert_store.apply_acks(self.states)
        first = cursor
        minutes = steps = evaluations = notified = points = 0
        transitions: list[Transition] = []
        reason = ""
        while True:
            # Read at most one chunk ahead of the cursor; the last chunk reaches now.
            to = min(now, cursor + CHUNK_MIN * NS_PER_MIN)
            from_ns = (
                self.reader.first_read_from(cursor)
                if self.reader.read_to_ns is None
                else self.reader.keep_from(cursor)
            )
            self.reader.read(from_ns, to + 1)
            end = self._horizon(now, to)
            if end <= cursor:
                if not steps:
                    reason = (
                        "nothing due: the newest reading is not past the cursor yet"
                        if end < now
                        else "nothing due"
                    )
                break
            r = self._evaluate(cursor, end, send=True, write=True, commit=True, now=now)
            minutes += r.minutes
            steps += r.steps
            evaluations += r.evaluations
            notified += r.notifications
            points += r.points
            transitions.extend(r.transitions)
            cursor = end
            self.reader.trim(self.reader.keep_from(cursor))
            if to >= now:
                break
            if self.stop is not None and self.stop.is_set():
                reason = "stopped: the catch-up goes on from the cursor at the next start"
                break
        dropped = dict(self.reader.dropped)
        if dropped != dropped0:
            log.warning(
                "alerts %s: readings whose value is not a number were left out: %s",
                self.plant_id,
                ", ".join(f"{m}: {n}" for m, n in sorted(dropped.items())),
            )
        return TickResult(
            first if steps else None,
            cursor if steps else None,
            minutes,
            evaluations,
            tuple(transitions),
            notified,
            points,
            self.reader.requests - requests0,
            reason,
            time.perf_counter() - started,
            {"dropped": dropped},
            steps,
        )

    def _horizon(self, now: int, read_to: int) -> int:
        """The last step due (module docstring), for readings read up to ``read_to``."""
        stale_ns = self.acfg.stale_after_s * NS
        newest = self.reader.newest_ns
        # Catching up, the chunk's end bounds it (the clock is far ahead); live, now - settle.
        limit = read_to if read_to < now else now - self.acfg.settle_s * NS
        if newest is None or read_to - newest >= stale_ns:
            return _floor(limit, self.step_ns)  # the plant is silent: the clock alone
        return _floor(min(limit, newest), self.step_ns)

    def run_due(self, now_ns: int | None = None) -> TickResult | None:
        """``tick`` when ``alerts.interval_s`` has passed since the last one (by the engine's
        clock); None otherwise."""
        now_s = self.clock() if now_ns is None else now_ns / NS
        if self.last_tick_s is not None and now_s - self.last_tick_s < self.acfg.interval_s:
            return None
        self.last_tick_s = now_s
        return self.tick(now_ns)

    # ---- evaluating ----------------------------------------------------------------------

    def _evaluate(
        self, start: int, end: int, *, send: bool, write: bool, commit: bool, now: int | None = None
    ) -> TickResult:
        """Apply every target's samples of the steps ``(start, end]`` to ``self.states``."""
        samples = self.reader.samples(start, end)
        evaluations = 0
        done: list[tuple[int, str, object, Transition, Sample, AlertState]] = []
        changed: dict[str, AlertState] = {}
        for store_key, target in self.by_key.items():
            state = self.states.get(store_key) or AlertState(target.key, target.rule.id)
            before = state
            for sample in samples.get(store_key, ()):
                state, made = machine.step(target.rule, state, sample, self.plant_id)
                evaluations += 1
                for tr in made:
                    done.append((tr.at_ns, store_key, target, tr, sample, state))
            if state != before:
                changed[store_key] = state
        try:
            out = self._publish(
                start, end, done, changed, send=send, write=write, commit=commit, now=now
            )
        except BaseException:
            # Nothing of these steps is committed: the next tick starts again from the
            # committed states (the in-memory ones would make the machine skip the steps).
            self.states = None
            raise
        self.states.update(changed)
        return dataclasses.replace(out, evaluations=evaluations)

    def _publish(self, start, end, done, changed, *, send, write, commit, now=None) -> TickResult:
        """The gf_alert points, the notifications, then the commit (module docstring)."""
        done.sort(key=lambda d: (d[0], d[1]))
        lines, notes = [], []
        for _, _, target, tr, sample, state in done:
            note = self._notification(target, tr, sample, state)
            if write:
                lines.append(transition_line(self.plant_id, target, tr, state, note.subject))
            if tr.event is not None and send and not self._superseded(target.rule, tr, now):
                notes.append((note, target.rule.channels))
        if write and lines:
            self.store.write_lines(lines)
        if send and self.dispatcher is not None:
            for note, channels in notes:
                self.dispatcher.submit(note, channels)
        if commit:
            self.alert_store.commit(changed.values(), end)
        minutes = (end - start) / NS_PER_MIN
        for tr in (d[3] for d in done):
            log.info(
                "alert %s %s: %s -> %s at %d (%s)",
                tr.rule_id,
                tr.key,
                tr.from_state,
                tr.to_state,
                tr.at_ns,
                tr.event or "no event",
            )
        return TickResult(
            start,
            end,
            minutes,
            0,
            tuple(d[3] for d in done),
            len(notes) if self.dispatcher is not None else 0,
            len(lines),
            steps=(end - start) // self.step_ns,
        )

    def _superseded(self, rule, tr: Transition, now: int | None) -> bool:
        """A repeat whose next repeat is already due by the clock: a catch-up over days of a
        firing alert would otherwise send every repeat of the past at once (one an hour for a
        critical one). Its gf_alert point is written; the newest repeat is sent."""
        if tr.event != "repeat" or now is None or rule.repeat_interval_s <= 0:
            return False
        return tr.at_ns + (rule.repeat_interval_s + self.acfg.settle_s) * NS <= now

    def _notification(self, target, tr: Transition, sample: Sample, state: AlertState):
        from greenfoundry.alerts import messages

        return messages.notification(self.cfg, target, tr, sample, state, self.acfg.link)

    # ---- replay --------------------------------------------------------------------------

    def replay(self, start_ns: int, end_ns: int, *, write: bool = False) -> list[Transition]:
        """Evaluate the steps of ``(start_ns, end_ns]`` from a clean state (every target
        OK), without sending, committing, or (unless ``write``) writing ``gf_alert`` points;
        the transitions in time order. Leaves the live state and cursor alone."""
        with self._guard:
            live_states, live_reader = self.states, self.reader
            self.states = {}
            self.reader = SignalReader(self.cfg, self.store, self.acfg, self.targets)
            try:
                out: list[Transition] = []
                cursor = _floor(start_ns, self.step_ns)
                end_ns = _floor(end_ns, self.step_ns)
                while cursor < end_ns:
                    end = min(end_ns, cursor + CHUNK_MIN * NS_PER_MIN)
                    from_ns = (
                        self.reader.first_read_from(cursor)
                        if self.reader.read_to_ns is None
                        else self.reader.keep_from(cursor)
                    )
                    self.reader.read(from_ns, end + 1)
                    r = self._evaluate(cursor, end, send=False, write=write, commit=False)
                    out.extend(r.transitions)
                    cursor = end
                    self.reader.trim(self.reader.keep_from(cursor))
                return out
            finally:
                self.states, self.reader = live_states, live_reader

    def close(self) -> None:
        self.alert_store.close()


# ---- the metrics service's entry -----------------------------------------------------------

_ENGINES: dict[tuple[str, str], AlertEngine] = {}
_OWN_DISPATCHER: set[tuple[str, str]] = set()  # engines whose dispatcher run_due made
_ENGINES_LOCK = threading.Lock()


def run_due(cfg, now_ns: int | None = None, *, store=None, dispatcher=None) -> TickResult | None:
    """Tick the plant's alert engine when ``alerts.interval_s`` has passed since its last tick
    (None otherwise). One engine per plant and state folder is kept between calls (its readings
    in memory); ``store``, ``dispatcher`` are used when it is made (default: the metrics'
    store, and a ``Dispatcher`` over the config's channels in the alerts' state folder, which
    takes that folder's outbox lock until ``close_all``)."""
    key = (cfg.plant.id, str(cfg.alerts.state_dir))
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            if dispatcher is None:
                from greenfoundry.alerts.dispatch import Dispatcher

                dispatcher = Dispatcher(cfg.alerts.channels, cfg.alerts.state_dir)
                _OWN_DISPATCHER.add(key)
            engine = AlertEngine(cfg, store=store, dispatcher=dispatcher)
            _ENGINES[key] = engine
    return engine.run_due(now_ns)


def close_all() -> None:
    """Close the engines ``run_due`` made, and the dispatchers it made for them: the service's
    shutdown, once no tick runs any more (after its scheduler's shutdown)."""
    with _ENGINES_LOCK:
        engines = list(_ENGINES.items())
        _ENGINES.clear()
        own = set(_OWN_DISPATCHER)
        _OWN_DISPATCHER.clear()
    for key, engine in engines:
        if key in own:
            engine.dispatcher.close()
        engine.close()


__all__ = [
    "MEASUREMENT",
    "AlertEngine",
    "TickResult",
    "close_all",
    "run_due",
    "transition_line",
]
