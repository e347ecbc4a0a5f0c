"""The simulated plant, published for a week through the real broker, ingest and InfluxDB and
rolled up by the metrics engine, gives the plant indicators the simulator's own truth says:
Table 5 (energy per tonne of pipe, the power factor, the water-reuse rates, sand and metal
reuse), Table A.1 (scrap rate, process yield, first-pass rates overall and by DN range, the
online inspection rate, output) and CO₂ per tonne of pipe and of liquid iron, for each of seven
plant-local days.

The set-up is `test_ground_truth.py`'s (its `Published` recorder and `_gaps`): the simulator
publishes as a device of the plant, the real ingest writes, we wait until InfluxDB holds every
reading the broker acknowledged, the engine backfills the days. Only the signals these
indicators read are in the test's config: the site's active and reactive meter, natural gas,
oxygen, the six water meters, the furnaces' tap weights, and casting line 1's batches and
hourly totals. Sampling is 300 s: no Table 6 rule here needs minute data, and the week is 25 000
readings, not 105 000 at 60 s. Faults: `gaps` (a device silent for 5–60 minutes, twice a day: its
readings never reach the broker) and `late` (stretches sent out of order).

Where each expected number comes from:

* counters (kWh, kvarh, m³): the engine's rule is that an increment belongs to the window of
  its later reading (metrics README, "Windows"), so a day's consumption is the meter's true
  difference (`PlantModel.truth(...)["counters"]`, an exact integral) between the last
  *published* readings at or before the day's start and end — gaps included, since a gap only
  moves those instants. Each reading is published rounded to the signal's resolution
  (`sim.plant.DECIMALS`: 0.1 kWh and kvarh, 0.01 m³), so each consumption is within one
  resolution step of the truth.
* events (t of pipe, scrap, sand and returns, counts, tap tonnes): the truth's sums over the
  day (`truth(...)["production"]`, `["events"]`, `["furnaces"]`, events with start ≤ t < end as
  the engine counts them), less what fell in the device's gaps (the fault's own intervals,
  `faults.gap_intervals`, summed by `truth` over each interval). Tonnes are published to 0.001
  t (taps 0.01 t), so a sum of n events is within n × half a step; counts are whole: exact.
* factors, from metrics/factors.yaml as the engine's pure functions document them: GB/T 2589
  standard coal, electricity at its equivalent value 0.1229 kgce/kWh, natural gas 1.2143
  kgce/m³, oxygen 0.4000 kgce/m³; CO₂, grid electricity 0.5306 kgCO₂/kWh, natural gas 2.162
  kgCO₂/m³ (bought-in oxygen has no CO₂ factor). The formulas are those of metrics/table5.py,
  water.py, table_a1.py and co2.py, written out again below.

Tolerances: a ratio x / y whose inputs are within dx and dy of the truth is within
(dx/x + dy/y) / (1 − dy/y) of it, relatively; `_close` takes dx/x + dy/y, widened by 0.1 % for
the denominator (dy/y stays below 10⁻³ here) and by 1e-9 for float sums. Each assertion
computes its bound from the inputs' resolutions and the number of events: they come out
between 10⁻⁷ (the meters' ratios) and 6 × 10⁻⁴ (rates of small event sums: scrap, sand,
returns, about 50 rounded batches a day of a few tonnes). A wrong window edge (an hour of pipe
is about 4 % of a day's) or a factor off in its fourth digit fails them; the first-pass and
inspection rates, counts over counts, must agree to the float.
"""

from __future__ import annotations

import copy
import math
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
import yaml

from greenfoundry import plant
from greenfoundry.ingest.service import Ingest
from greenfoundry.metrics import schema
from greenfoundry.metrics.engine import Engine
from greenfoundry.sim.faults import Faults
from greenfoundry.sim.plant import BATCH_SIGNALS, LINE_SIGNALS, SITE_COUNTERS, PlantModel
from greenfoundry.sim.publisher import run
from greenfoundry.stack import apply_stack
from tests.metrics.test_engine_table5 import all_points as plant_points
from tests.metrics.test_ground_truth import Published, _gaps
from tests.plant import EXAMPLE, count, store, wait_for

pytestmark = pytest.mark.servers

PID = "m-truth-plant"
SEED = 11
INTERVAL_S = 300
FAULTS = "gaps,late"
# Seven plant-local days in Asia/Shanghai (+08:00, no DST): 2026-11-02 … 2026-11-08, that is
# [2026-11-01 16:00Z, 2026-11-08 16:00Z).
START = datetime(2026, 11, 1, 16, tzinfo=timezone.utc)
DAYS = [START + timedelta(days=i) for i in range(7)]
END = DAYS[-1] + timedelta(days=1)
PUBLISH_START = START - timedelta(hours=3)  # every meter has a reading before the first day
PUBLISH_END = END + timedelta(hours=3)
SIGNALS = {*SITE_COUNTERS, "water_m3", "tap_iron_t", *BATCH_SIGNALS, *LINE_SIGNALS}
# Published resolution (sim/plant.py DECIMALS): half a step is a rounded reading's error.
STEP = {"kwh": 0.1, "kvarh": 0.1, "m3": 0.01, "t": 0.001, "tap_t": 0.01}
# metrics/factors.yaml, as stated in the module docstring.
KGCE = {"electricity": 0.1229, "natural_gas": 1.2143, "oxygen": 0.4000}
KG_CO2 = {"electricity": 0.5306, "natural_gas": 2.162}
METERS = {
    "kwh": "site/main-meter/energy",
    "kvarh": "site/main-meter/reactive",
    "gas": "utility/gas-in/volume",
    "oxygen": "utility/oxygen-in/volume",
    "cooling_circulating": "utility/cooling-loop/volume",
    "cooling_makeup": "utility/cooling-makeup/volume",
    "process_intake": "utility/process-in/volume",
    "process_reused": "utility/process-reuse/volume",
    "reclaimed_intake": "utility/reclaimed-in/volume",
    "total_intake": "utility/site-intake/volume",
}
LINE = "casting/line1"


def _configs(tmp_path, stack):
    raw = copy.deepcopy(EXAMPLE)
    raw["plant"]["id"] = PID
    raw["mqtt"]["client_id"] = f"gf-ingest-{PID}"
    raw["mqtt"].pop("share_group", None)
    raw["signals"] = [s for s in raw["signals"] if s["signal"] in SIGNALS]
    raw["ingest"].update({"spool_dir": "spool", "deadletter_file": "deadletter.jsonl"})
    raw["metrics"] = {"state_dir": str(tmp_path / "state")}
    raw.pop("alerts", None)
    path = tmp_path / f"{PID}.yaml"
    path.write_text(yaml.safe_dump(raw))
    cfg = plant.load(path, env={"GF_MQTT_PASSWORD": "unused", "GF_INFLUX_PASSWORD": "unused"})
    return apply_stack(cfg, stack.dir, role="ingest"), apply_stack(cfg, stack.dir, role="device")


@pytest.fixture(scope="module")
def week(tmp_path_factory, stack):
    tmp = tmp_path_factory.mktemp("truth-plant")
    ingest_cfg, device_cfg = _configs(tmp, stack)
    assert {s.signal for s in ingest_cfg.routes.values()} == SIGNALS
    st = store(stack)
    ingest = Ingest(ingest_cfg)
    ingest.start()
    assert ingest.wait_connected(10)
    published = Published(f"{device_cfg.mqtt.topic_root}/{PID}/")
    faults = Faults.parse(FAULTS)
    measurements = sorted({s.signal for s in ingest_cfg.routes.values()})
    try:
        stats = run(
            device_cfg,
            seed=SEED,
            interval_s=INTERVAL_S,
            faults=faults,
            backfill_days=(PUBLISH_END - PUBLISH_START) / timedelta(days=1),
            clock=lambda: PUBLISH_END.timestamp(),
            max_inflight=500,
            on_message=published,
        )
        assert stats.acked == stats.messages and stats.refused == 0 and stats.bad_payloads == 0
        held = lambda: sum(count(st, m, PID) for m in measurements)  # noqa: E731
        wait_for(
            lambda: held() >= stats.readings,
            120,
            lambda: f"{held()} of {stats.readings} readings in InfluxDB",
        )
        assert held() == stats.readings
        assert ingest.counters.rejected == 0
    finally:
        ingest.stop()
    engine = Engine(ingest_cfg)  # its own InfluxDB user, role "metrics"
    engine.backfill(_ns(START), _ns(END))
    engine.close()
    model = PlantModel(device_cfg, SEED, interval_s=INTERVAL_S, faults=faults)
    return {
        "cfg": ingest_cfg,
        "model": model,
        "published": published,
        "points": plant_points(st, PID),
        "root": f"{device_cfg.mqtt.topic_root}/{PID}/",
    }


def _ns(t: datetime) -> int:
    return int(t.timestamp() * 10**9)


class Day:
    """The truth of one plant-local day [a, b), as the module docstring derives it."""

    def __init__(self, week, a: datetime):
        self.a, self.b = a, a + timedelta(days=1)
        model, pub, root = week["model"], week["published"], week["root"]
        self.cons = {}
        for name, topic in METERS.items():
            s = pub.series(topic)
            t_a = s.index[s.index <= pd.Timestamp(self.a)][-1].to_pydatetime()
            t_b = s.index[s.index <= pd.Timestamp(self.b)][-1].to_pydatetime()
            self.cons[name] = model.truth(t_a, t_b)["counters"][root + topic]
        whole = model.truth(self.a, self.b)
        self.iron_all = sum(whole["furnaces"][f]["iron_t"] for f in ("if1", "if2"))
        self.pipe_all = whole["production"]["pipe_output_t"]
        prod = dict(whole["production"])
        self.by_dn = {band: dict(sums) for band, sums in prod.pop("by_dn").items()}
        self.prod = prod
        self.line = {s: whole["events"][f"{root}{LINE}/{_topic(s)}"] for s in LINE_SIGNALS}
        for lo, hi in _gaps(model, LINE, self.a, self.b):
            lost = model.truth(lo, hi)
            for k, v in lost["production"].items():
                if k == "by_dn":
                    for band, sums in v.items():
                        for kk, vv in sums.items():
                            self.by_dn[band][kk] -= vv
                else:
                    self.prod[k] -= v
            for s in LINE_SIGNALS:
                self.line[s] -= lost["events"][f"{root}{LINE}/{_topic(s)}"]
        self.iron_t = 0.0
        for f in ("if1", "if2"):
            iron = whole["furnaces"][f]["iron_t"]
            for lo, hi in _gaps(model, f"melt/{f}", self.a, self.b):
                iron -= model.truth(lo, hi)["furnaces"][f]["iron_t"]
            self.iron_t += iron
        # How many events of each kind reached InfluxDB in the day: their rounding adds up.
        self.n = {topic: self._count(pub, topic) for topic in pub.readings}
        self.n_taps = self.n["melt/if1/tap_weight"] + self.n["melt/if2/tap_weight"]

    def _count(self, pub, topic: str) -> int:
        t = pd.to_datetime([ts for ts, _ in pub.readings[topic]], unit="ms", utc=True)
        return int(((t >= pd.Timestamp(self.a)) & (t < pd.Timestamp(self.b))).sum())

    def events_err(self, signal: str) -> float:
        """The largest error of a day's sum of `signal` events: half a step per event."""
        return self.n[f"{LINE}/{_topic(signal)}"] * STEP["t"] / 2


def _topic(signal: str) -> str:
    """The line-1 topic of a batch or line signal in the example config."""
    topic = next(s["topic"] for s in EXAMPLE["signals"] if s["signal"] == signal)
    return topic.rsplit("/", 1)[1]


@pytest.fixture(scope="module")
def days(week):
    return [Day(week, a) for a in DAYS]


def _point(week, measurement: str, indicator: str, day: Day) -> dict:
    return week["points"][(measurement, indicator, "day", _ns(day.a))]


def _close(value: float, expected: float, rel: float) -> None:
    assert value == pytest.approx(expected, rel=rel * 1.001 + 1e-9, abs=1e-12)


def test_the_truth_is_a_real_week_with_gaps(week, days):
    # The comparison means something only if the plant made pipe of both DN ranges every day and
    # the gaps cost it events the truth had to take out.
    model = week["model"]
    for d in days:
        assert d.prod["pipe_output_t"] > 500 and set(d.by_dn) == {"80-300", "350-1000"}
        assert d.iron_t > 500 and d.cons["kwh"] > 1e5
    lost = sum(len(_gaps(model, LINE, d.a, d.b)) for d in days)
    assert lost >= 7  # about two gaps a device-day


def test_table5_energy_per_tonne_of_pipe(week, days):
    for d in days:
        p = _point(week, schema.T5_PLANT, "energy_per_t_pipe", d)
        kgce = {
            "electricity": d.cons["kwh"] * KGCE["electricity"],
            "natural_gas": d.cons["gas"] * KGCE["natural_gas"],
            "oxygen": d.cons["oxygen"] * KGCE["oxygen"],
        }
        err = {
            "electricity": STEP["kwh"] * KGCE["electricity"],
            "natural_gas": STEP["m3"] * KGCE["natural_gas"],
            "oxygen": STEP["m3"] * KGCE["oxygen"],
        }
        for carrier, value in kgce.items():
            _close(p[f"kgce_{carrier}"], value, err[carrier] / value)
        pipe_t, pipe_err = d.prod["pipe_output_t"], d.events_err("pipe_output_t")
        _close(p["pipe_t"], pipe_t, pipe_err / pipe_t)
        total = sum(kgce.values())
        _close(p["kgce_per_t"], total / pipe_t, sum(err.values()) / total + pipe_err / pipe_t)
        assert 60 < p["kgce_per_t"] < 100  # sim/plant.py: about 70–80 kgce/t of pipe
        assert p["status"] in ("ok", "low_coverage")


def test_table5_power_factor(week, days):
    for d in days:
        p = _point(week, schema.T5_PLANT, "power_factor", d)
        kwh, kvarh = d.cons["kwh"], d.cons["kvarh"]
        _close(p["active_kwh"], kwh, STEP["kwh"] / kwh)
        _close(p["reactive_kvarh"], kvarh, STEP["kvarh"] / kvarh)
        # PF = P / √(P² + Q²): its relative error is below that of Q / P.
        rel = STEP["kwh"] / kwh + STEP["kvarh"] / kvarh
        _close(p["power_factor"], kwh / math.hypot(kwh, kvarh), rel)
        assert 0.93 <= p["power_factor"] <= 0.97  # sim: drawn per UTC day in 0.93–0.97


def test_table5_water_reuse_rates(week, days):
    step = STEP["m3"]
    for d in days:
        w = d.cons
        rows = {
            # (numerator, denominator, the numerator's and denominator's error)
            "cooling_recirculation": (
                w["cooling_circulating"],
                w["cooling_circulating"] + w["cooling_makeup"],
                step,
                2 * step,
            ),
            "process_wastewater_reuse": (
                w["process_reused"],
                w["process_reused"] + w["process_intake"],
                step,
                2 * step,
            ),
            "reclaimed_share": (w["reclaimed_intake"], w["total_intake"], step, step),
            "water_reuse": (
                w["cooling_circulating"] + w["process_reused"],
                w["cooling_circulating"] + w["process_reused"] + w["total_intake"],
                2 * step,
                3 * step,
            ),
        }
        for name, (num, den, e_num, e_den) in rows.items():
            p = _point(week, schema.T5_PLANT, name, d)
            _close(p["rate_pct"], 100 * num / den, e_num / num + e_den / den)
            assert 0 < p["rate_pct"] < 100


def test_table5_sand_and_metal_returns(week, days):
    for d in days:
        for name, num, den in (
            ("sand_reuse", "sand_reclaimed_t", "sand_used_t"),
            ("metal_returns", "returns_charged_t", "returns_arising_t"),
        ):
            p = _point(week, schema.T5_PLANT, name, d)
            rel = d.events_err(num) / d.line[num] + d.events_err(den) / d.line[den]
            _close(p["rate_pct"], 100 * d.line[num] / d.line[den], rel)


def test_table_a1_scrap_yield_and_output(week, days):
    for d in days:
        good, scrap = d.prod["pipe_output_t"], d.prod["pipe_scrap_t"]
        e_good, e_scrap = d.events_err("pipe_output_t"), d.events_err("pipe_scrap_t")
        p = _point(week, schema.A1_PLANT, "scrap_rate", d)
        # scrap / (good + scrap) × 100, by weight.
        _close(
            p["rate_pct"],
            100 * scrap / (good + scrap),
            e_scrap / scrap + (e_good + e_scrap) / (good + scrap),
        )
        assert 2.5 < p["rate_pct"] < 7  # sim: 3–6 % of the pieces
        # good pipe / liquid iron tapped × 100.
        iron, e_iron = d.iron_t, d.n_taps * STEP["tap_t"] / 2
        p = _point(week, schema.A1_PLANT, "process_yield", d)
        _close(p["rate_pct"], 100 * good / iron, e_good / good + e_iron / iron)
        # The plant's own yield, every tap and batch counted, is the simulator's 0.88–0.93 of
        # the iron (give or take whole pipes, their ±1 % weights and the hour between a tap and
        # its batch). The measured one differs from it by what the gaps hid: taps of a silent
        # furnace (up: to 97 % on one day here) or batches of a silent line (down); that is
        # what the truth above took out.
        assert 85 < 100 * d.pipe_all / d.iron_all < 96
        p = _point(week, schema.A1_PLANT, "output", d)
        _close(p["output_10kt"], good / 1e4, e_good / good)


def test_table_a1_first_pass_and_online_inspection_rates_are_exact(week, days):
    # Counts are whole numbers: no rounding, so the rates agree to the float.
    for d in days:
        pr = d.prod
        for name, passed, tested in (
            ("hydro_first_pass", "hydro_passed_count", "hydro_tested_count"),
            ("pipe_first_pass", "inspection_passed_count", "inspected_count"),
        ):
            p = _point(week, schema.A1_PLANT, name, d)
            assert (p["passed"], p["tested"]) == (pr[passed], pr[tested])
            _close(p["rate_pct"], 100 * pr[passed] / pr[tested], 0)
            for band in ("80-300", "350-1000"):
                q = _point(week, schema.A1_PLANT, f"{name}:DN{band}", d)
                b = d.by_dn[band]
                assert (q["passed"], q["tested"]) == (b[passed], b[tested])
                _close(q["rate_pct"], 100 * b[passed] / b[tested], 0)
            assert (schema.A1_PLANT, f"{name}:DN>1000", "day", _ns(d.a)) not in week["points"]
        # min(hydro-tested, inspected) / cast × 100 (the sim tests and inspects the same pipes).
        p = _point(week, schema.A1_PLANT, "online_inspection_rate", d)
        both = min(pr["hydro_tested_count"], pr["inspected_count"])
        _close(p["rate_pct"], 100 * both / pr["pipe_cast_count"], 0)
        assert 96 < p["rate_pct"] <= 100  # sim: 0–3 % bypass the tests


def test_co2_per_tonne_of_pipe_and_of_liquid_iron(week, days):
    for d in days:
        kg = d.cons["kwh"] * KG_CO2["electricity"] + d.cons["gas"] * KG_CO2["natural_gas"]
        e_kg = STEP["kwh"] * KG_CO2["electricity"] + STEP["m3"] * KG_CO2["natural_gas"]
        good, e_good = d.prod["pipe_output_t"], d.events_err("pipe_output_t")
        iron, e_iron = d.iron_t, d.n_taps * STEP["tap_t"] / 2
        p = _point(week, schema.CO2_PLANT, "co2_per_t_pipe", d)
        _close(p["kg_co2"], kg, e_kg / kg)
        _close(p["kg_co2_per_t"], kg / good, e_kg / kg + e_good / good)
        assert "no CO2 factor for oxygen" in p["lacking"]
        p = _point(week, schema.CO2_PLANT, "co2_per_t_liquid_iron", d)
        _close(p["kg_co2_per_t"], kg / iron, e_kg / kg + e_iron / iron)
