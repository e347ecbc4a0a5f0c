"""Each fault mode does what it claims, and only that; all are off by default."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from datetime import timedelta

import pytest

from greenfoundry.errors import UsageError
from greenfoundry.ingest.payload import PayloadParser
from greenfoundry.sim.faults import ALL_BAD_KINDS, BAD_KINDS, MODES, Faults, gap_intervals
from greenfoundry.sim.plant import EPOCH_MS, PlantModel
from tests.sim.conftest import DAY0
from tests.sim.test_plant import NOW_NS


def _key(e):
    return (e.topic, e.ts_ms)


def test_parse_fault_modes():
    assert Faults.parse("") == Faults()
    assert Faults.parse("gaps, spikes").names == ("gaps", "spikes")
    assert Faults.parse("all").names == MODES
    assert MODES[:4] == ("gaps", "drift", "spikes", "bad_payloads")
    assert {"late", "resets", "rollovers", "calibration", "stack_drift", "hot_furnace"} <= set(
        MODES
    )
    assert Faults.parse("drift", rate=3.0).rate == 3.0
    with pytest.raises(UsageError, match="unknown fault mode 'noise'"):
        Faults.parse("gaps,noise")
    with pytest.raises(UsageError, match="rate"):
        Faults.parse("gaps", rate=0)


def test_off_by_default(clean_day):
    model, events = clean_day
    assert not model.faults.any
    assert all(e.fault is None and e.raw is None for e in events)
    assert model.stats["gap_dropped"] == 0


def test_faults_leave_the_rest_of_the_plant_alone(clean_day, faulty_day):
    """Every good reading with faults on is the clean one, unless flagged as drift or spike."""
    clean = {_key(e): e for e in clean_day[1]}
    for e in faulty_day[1]:
        if e.raw is None and e.fault is None:
            assert clean[_key(e)] == e


def test_gaps_silence_a_device_and_leave_a_sequence_gap(cfg, clean_day, faulty_day):
    model = faulty_day[0]
    clean, faulty = clean_day[1], faulty_day[1]
    present = {_key(e) for e in faulty}
    lost = [e for e in clean if _key(e) not in present]
    assert len(lost) == model.stats["gap_dropped"] > 0
    # Exactly the readings inside a gap of their device are lost; gaps last 5–60 minutes.
    for e in clean:
        day = (e.ts_ms - EPOCH_MS) // 86_400_000
        gaps = gap_intervals(model.faults, model.seed, "/".join(e.device_key), day)
        assert all(300 <= b - a <= 3600 or b == 86400 for a, b in gaps)
        t_s = (e.ts_ms - EPOCH_MS) / 1000 - day * 86400
        assert any(a <= t_s < b for a, b in gaps) == (_key(e) not in present)
    # A gap silences the whole device: when one of its topics is lost at an instant, all are.
    by_instant = defaultdict(set)
    for e in clean:
        by_instant[(e.device_key, e.ts_ms)].add(_key(e) in present)
    assert all(len(flags) == 1 for flags in by_instant.values())
    # Survivors keep their clean sequence numbers, so the ingest sees the jump.
    seqs = defaultdict(list)
    for e in faulty:
        if e.raw is None:
            seqs[e.device_key].append(e.seq)
    jumps = sum(1 for s in seqs.values() for a, b in itertools.pairwise(s) if b != a + 1)
    assert jumps > 0


def test_drift_is_a_growing_offset_on_sensors_only(clean_day, faulty_day):
    clean = {_key(e): e for e in clean_day[1]}
    drifting = defaultdict(list)
    for e in faulty_day[1]:
        if e.fault == "drift":
            drifting[e.topic].append((e.ts_ms, e.value - clean[_key(e)].value))
    assert drifting
    assert not any(
        t.endswith(("/energy", "/volume", "/tap_weight", "/pipe_count")) for t in drifting
    )
    for topic, offsets in drifting.items():
        values = [o for _, o in offsets]
        assert all(o >= -0.02 for o in values), topic  # high, never low (rounding aside)
        # It grows: the offset at the end of the stretch is the largest of the first half.
        if len(values) > 100 and not topic.endswith("tap_temp"):
            assert values[len(values) // 2] >= max(values[: len(values) // 4]) * 0.9


def test_spikes_are_single_outliers(clean_day, faulty_day):
    clean = {_key(e): e for e in clean_day[1]}
    faulty = faulty_day[1]
    spikes = [e for e in faulty if e.fault == "spike"]
    assert len(spikes) == faulty_day[0].stats["spike"] > 10
    faulty_by_key = {_key(e): e for e in faulty if e.raw is None}
    order = defaultdict(list)  # the clean series: a gap may join two spikes' neighbourhoods
    for e in clean_day[1]:
        order[e.topic].append(_key(e))
    for e in spikes:
        base = clean[_key(e)].value
        if e.topic.endswith("tap_temp"):
            assert e.value >= base + 150
        elif e.topic.endswith("air_temp"):
            assert e.value >= min(base + 15.9, 65.0)
        else:
            assert e.value >= 3.9 * base
        series = order[e.topic]
        i = series.index(_key(e))
        for k in series[max(0, i - 1) : i] + series[i + 1 : i + 2]:
            assert k not in faulty_by_key or faulty_by_key[k].fault != "spike"


def test_drifted_and_spiked_readings_still_pass_the_ingest(cfg, faulty_day):
    """Outliers for the metrics to handle: every good reading with faults on is accepted, so
    the ingest's rejections are exactly the bad payloads."""
    parser = PayloadParser(cfg)
    for e in faulty_day[1]:
        if e.fault in ("drift", "spike"):
            readings, rejects = parser.parse(e.topic, e.encode(), NOW_NS)
            assert rejects == [] and len(readings) == 1, (e.topic, e.payload, rejects)


def test_bad_payloads_are_rejected_by_the_ingest_for_the_reason_they_claim(cfg, faulty_day):
    bad = [e for e in faulty_day[1] if e.raw is not None]
    assert Counter(e.reject for e in bad).keys() == set(BAD_KINDS)
    parser = PayloadParser(cfg)
    for e in bad:
        readings, rejects = parser.parse(e.topic, e.encode(), NOW_NS)
        assert readings == [], (e.reject, e.raw)
        assert [r.reason for r in rejects] == [e.reject], (e.topic, e.raw)


def test_unknown_plant_is_available_on_request(cfg):
    faults = Faults(bad_payloads=True, bad_kinds=ALL_BAD_KINDS, bad_payloads_per_hour=60)
    model = PlantModel(cfg, faults=faults)
    bad = [e for e in model.events(DAY0, DAY0 + timedelta(hours=6)) if e.reject == "unknown_plant"]
    assert bad and all("/other-demo-dip/" in e.topic for e in bad)
    parser = PayloadParser(cfg)
    assert {parser.parse(e.topic, e.raw, NOW_NS)[1][0].reason for e in bad} == {"unknown_plant"}
