"""The one state machine of every alert rule: pure, no I/O, no clock (alerts/README.md).

Each target (one rule applied to one stack/pollutant, furnace or signal) has one `AlertState`.
`step` applies one `Sample` to it, on event time, and returns the new state with the transitions
it made (at most one per sample). The engine feeds it minute by minute, live or in a replay, so
a replay of the same readings gives the same transitions and the same alert ids.

States::

    OK ──holds──▶ PENDING ──held for `for`──▶ FIRING ──below recover_below for clear_for──▶ OK
     ▲               │                          │
     └──stops holding┘                          └── every repeat_interval, unacknowledged:
                                                    FIRING ▶ FIRING "repeat"
    any state ──no data (value None)──▶ STALE (the state it left is kept as `underlying`)
    STALE ──a value──▶ the underlying state's logic, resumed

The fine print, decided here and tested in tests/alerts/test_machine.py:

* "holds" is ``value >= above``, or ``trend_value >= trend_to`` when the rule has a trend line
  and the sample a projection. Recovery needs ``value < recover_below`` and, when the rule has
  a trend line and the sample a projection, the projection back under the trend line by the
  same margin: ``trend_value < trend_to - (above - recover_below)`` (0.75 C for the default
  warning). Without that, an alert the trend fired would resolve while the stack still rises
  towards 0.8 C and fire again at the next sample: the flapping hysteresis is there to stop.
* Durations are measured between samples' event times: PENDING becomes FIRING at the first
  sample with ``at - pending_since >= for_s`` (``for_s`` 0: the first sample that holds fires);
  FIRING resolves at the first sample with ``at - clear_since >= clear_for_s``, `clear_since`
  being the first sample of an unbroken run below `recover_below`. A sample at or above
  `recover_below` breaks the run, so values oscillating around `above` (or around
  `recover_below`) never resolve until a whole `clear_for` lies below.
* A gap (value None) makes STALE and never resolves: it breaks a clearing run (the clearing must
  be seen again, whole, after the data is back), while a PENDING alert keeps its
  `pending_since` (a flaky signal must not keep a real exceedance from firing). The "stale"
  event is sent only when a FIRING alert goes STALE; the signal's own deadman rule reports
  missing data of an alert that was not firing.
* Samples at or before `last_at_ns` are ignored: a restart or a replay over minutes already
  applied changes nothing and fires nothing twice.
* A FIRING alert that nobody acknowledged repeats ("repeat" event) once `repeat_interval_s` has
  passed, on event time, since its last notification (its firing or its last repeat); 0 = never.
  An acknowledgement mutes the repeats of that alert; it ends when the alert resolves.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any

OK, PENDING, FIRING, STALE = "OK", "PENDING", "FIRING", "STALE"
STATES = (OK, PENDING, FIRING, STALE)
NS = 1_000_000_000


@dataclass(frozen=True)
class Sample:
    """What a target's signal says at one whole minute of event time."""

    at_ns: int  # event time (UTC ns, a whole minute) the value stands for
    value: float | None  # compared with the rule; None = no data at this time → STALE
    trend_value: float | None = None  # the value the trend projects at at_ns + horizon
    # For the message: the value in natural units, the limit, the unit, the slope, e.g.
    # {"mg_m3": 41.2, "limit_mg_m3": 50, "slope_per_h": 0.03}; see alerts/messages.py.
    shown: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertState:
    """One target's state; persisted as is (alerts/state.py)."""

    key: str  # the target's key: "S1/so2", "IF1", "stack_conc_mg_m3:S1/so2"
    rule_id: str
    state: str = OK  # OK | PENDING | FIRING | STALE
    underlying: str = OK  # while STALE: the state it left (a FIRING alert stays FIRING under it)
    since_ns: int | None = None  # when the current state began
    pending_since_ns: int | None = None  # when the condition began to hold (kept while FIRING)
    firing_since_ns: int | None = None
    clear_since_ns: int | None = None  # FIRING and value < recover_below since then
    alert_id: str | None = None  # set when it starts FIRING (see `alert_id`)
    last_at_ns: int | None = None  # event time of the last sample applied
    last_value: float | None = None
    last_notified_ns: int | None = None
    acked_by: str | None = None
    acked_at_ns: int | None = None

    @property
    def store_key(self) -> str:
        """The key of this state in AlertStore.load(): "rule_id|target"."""
        return f"{self.rule_id}|{self.key}"

    @property
    def effective(self) -> str:
        """The state the rule's logic is in: the underlying one while STALE."""
        return self.underlying if self.state == STALE else self.state


@dataclass(frozen=True)
class Transition:
    key: str
    rule_id: str
    alert_id: str | None
    from_state: str
    to_state: str
    at_ns: int
    value: float | None
    event: str | None  # the Notification event to send ("firing", "resolved", "stale", "repeat",
    # "acknowledged") or None
    # When the alert's condition began to hold (its PENDING start), for every transition of a
    # pending or firing alert, its resolution included; None when nothing held.
    since_ns: int | None = None


_STATE_FIELDS = frozenset(f.name for f in dataclasses.fields(AlertState))


def _replace(old: AlertState, /, **changes) -> AlertState:
    """``dataclasses.replace`` for an ``AlertState``, without its per-call cost: the machine
    makes one or two new states per sample (a catch-up makes millions), and
    ``dataclasses.replace`` re-runs ``__init__`` through the generic field machinery, about a
    quarter of a catch-up's time by the profile. ``AlertState`` has no ``__post_init__`` and
    no validation, so a copy of its fields with the changes is the same object; a name that
    is not a field is refused as ``replace`` refuses it."""
    if not changes.keys() <= _STATE_FIELDS:
        raise TypeError(f"not fields of AlertState: {sorted(changes.keys() - _STATE_FIELDS)}")
    new = object.__new__(AlertState)
    d = new.__dict__
    d.update(old.__dict__)
    d.update(changes)
    return new


def alert_id(plant_id: str, rule_id: str, key: str, firing_since_ns: int) -> str:
    """The id of one firing of one target: short enough to type in `greenfoundry alerts ack`,
    and a function of event time only, so a replay or a restart gives the same id again."""
    digest = hashlib.sha256(f"{plant_id}|{rule_id}|{key}|{firing_since_ns}".encode()).hexdigest()
    return f"{rule_id}-{digest[:10]}"


def holds(rule, sample: Sample) -> bool:
    """The rule's condition: the value at or above its line, or its trend reaching `trend_to`."""
    if sample.value is None:
        return False
    if sample.value >= rule.above:
        return True
    return (
        rule.trend_to is not None
        and sample.trend_value is not None
        and sample.trend_value >= rule.trend_to
    )


def recovered(rule, sample: Sample) -> bool:
    """A FIRING alert's clearing condition (the module docstring): the value under
    `recover_below` and any projection under the trend line by the same margin."""
    if sample.value is None or sample.value >= rule.recover_below:
        return False
    if rule.trend_to is None or sample.trend_value is None:
        return True
    return sample.trend_value < rule.trend_to - (rule.above - rule.recover_below)


def step(
    rule, state: AlertState, sample: Sample, plant_id: str
) -> tuple[AlertState, tuple[Transition, ...]]:
    """Apply one sample to one target's state (see the module docstring for the rules)."""
    if state.last_at_ns is not None and sample.at_ns <= state.last_at_ns:
        return state, ()
    at, value = sample.at_ns, sample.value
    seen = _replace(state, last_at_ns=at, last_value=value)

    if value is None:
        if state.state == STALE:
            return seen, ()
        new = _replace(seen, state=STALE, underlying=state.state, since_ns=at, clear_since_ns=None)
        event = "stale" if state.state == FIRING else None
        return new, (_transition(state, new, at, value, event),)

    new, event = _logic(rule, seen, sample, plant_id)
    if new.state == state.state and event is None:
        return new, ()
    return new, (_transition(state, new, at, value, event),)


def _logic(rule, s: AlertState, sample: Sample, plant_id: str) -> tuple[AlertState, str | None]:
    """The non-STALE logic from the effective state; returns the new state and its event."""
    at = sample.at_ns
    current = s.effective
    resumed = s.state == STALE
    if resumed:  # back from a gap: the underlying state again, from this sample on
        s = _replace(s, state=current, underlying=OK, since_ns=at)

    if current in (OK, PENDING):
        if not holds(rule, sample):
            if current == PENDING:
                return _ok(s, at), None
            return s, None
        pending_since = s.pending_since_ns if current == PENDING else at
        if at - pending_since >= rule.for_s * NS:
            aid = alert_id(plant_id, rule.id, s.key, at)
            fired = _replace(
                s,
                state=FIRING,
                since_ns=at,
                pending_since_ns=pending_since,
                firing_since_ns=at,
                clear_since_ns=None,
                alert_id=aid,
                last_notified_ns=at,
                acked_by=None,
                acked_at_ns=None,
            )
            return fired, "firing"
        if current == OK:
            return _replace(s, state=PENDING, since_ns=at, pending_since_ns=at), None
        return s, None

    # FIRING: only an unbroken run of recovered samples, clear_for long, resolves it.
    if recovered(rule, sample):
        clear_since = s.clear_since_ns if s.clear_since_ns is not None else at
        if at - clear_since >= rule.clear_for_s * NS:
            return _ok(s, at), "resolved"
        s = _replace(s, clear_since_ns=clear_since)
    else:
        s = _replace(s, clear_since_ns=None)
    due = (
        rule.repeat_interval_s > 0
        and s.acked_by is None
        and s.last_notified_ns is not None
        and at - s.last_notified_ns >= rule.repeat_interval_s * NS
    )
    if due:
        return _replace(s, last_notified_ns=at), "repeat"
    return s, None


def _ok(s: AlertState, at: int) -> AlertState:
    """Back to OK: the alert's firing is over, its id and acknowledgement with it."""
    return _replace(
        s,
        state=OK,
        underlying=OK,
        since_ns=at,
        pending_since_ns=None,
        firing_since_ns=None,
        clear_since_ns=None,
        alert_id=None,
        last_notified_ns=None,
        acked_by=None,
        acked_at_ns=None,
    )


def _transition(
    old: AlertState, new: AlertState, at: int, value: float | None, event: str | None
) -> Transition:
    # A resolved transition carries the id of the alert it ends, and when its condition began.
    aid = new.alert_id if new.alert_id is not None else old.alert_id
    since = new.pending_since_ns if new.pending_since_ns is not None else old.pending_since_ns
    return Transition(new.key, new.rule_id, aid, old.state, new.state, at, value, event, since)


def acknowledge(state: AlertState, by: str, at_ns: int) -> tuple[AlertState, Transition]:
    """Acknowledge the state's firing alert: its repeats stop until it resolves. The transition
    keeps the state (FIRING → FIRING, or STALE → STALE over a firing alert) with event
    "acknowledged". Raises ValueError when there is no firing alert or it is acknowledged."""
    if state.effective != FIRING or state.alert_id is None:
        raise ValueError(f"{state.store_key} has no firing alert (it is {state.state})")
    if state.acked_by is not None:
        raise ValueError(f"alert {state.alert_id} is already acknowledged by {state.acked_by}")
    new = dataclasses.replace(state, acked_by=by, acked_at_ns=at_ns)
    return new, Transition(
        state.key,
        state.rule_id,
        state.alert_id,
        state.state,
        state.state,
        at_ns,
        state.last_value,
        "acknowledged",
        state.pending_since_ns,
    )
