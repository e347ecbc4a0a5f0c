"""The store against a real InfluxDB 1.6 with auth on: writes land value for value, errors are
classified, and credentials are required."""

from __future__ import annotations

import pytest

from greenfoundry.errors import StoreError
from greenfoundry.stack import store_for
from greenfoundry.store import (
    InfluxStore,
    RejectedWriteError,
    RetryableWriteError,
    StoreSettings,
    quote_string,
)

pytestmark = pytest.mark.servers


def test_write_then_query_round_trips_exact_values_and_timestamps(stack):
    store = store_for(stack)
    # Values chosen to expose float formatting loss (0.1 + 0.2) and ns timestamps.
    lines = [
        "store_rt,plant=p1,device=d\\ 1 value=0.30000000000000004 1795392000000000001",
        "store_rt,plant=p1,device=d\\ 1 value=-12.5 1795392000123456789",
    ]
    store.write_lines(lines)
    df = store.query(
        "SELECT value FROM store_rt WHERE time >= 1795392000000000000 "
        "AND time < 1795392001000000000 GROUP BY device"
    )
    assert list(df["value"]) == [0.30000000000000004, -12.5]
    assert [t.value for t in df["time"]] == [1795392000000000001, 1795392000123456789]
    assert set(df["device"]) == {"d 1"}


def test_write_without_credentials_is_refused_not_retried(stack):
    anon = InfluxStore(StoreSettings(url=stack.influx_url, database=stack.influx_database))
    with pytest.raises(RejectedWriteError) as err:
        anon.write_lines(["store_anon value=1 1795392000000000000"])
    assert err.value.status == 401


def test_wrong_password_is_refused(stack):
    bad = InfluxStore(
        StoreSettings(
            url=stack.influx_url,
            database=stack.influx_database,
            username=stack.influx_username,
            password="wrong",
        )
    )
    with pytest.raises(RejectedWriteError) as err:
        bad.write_lines(["store_bad value=1 1795392000000000000"])
    assert err.value.status == 401
    assert "wrong" not in str(err.value)


def test_malformed_line_is_a_rejected_write(stack):
    with pytest.raises(RejectedWriteError) as err:
        store_for(stack).write_lines(["store_bad value= 1795392000000000000"])
    assert err.value.status == 400


def test_field_type_conflict_is_a_rejected_write(stack):
    store = store_for(stack)
    store.write_lines(["store_conflict value=1.5 1795392000000000000"])
    with pytest.raises(RejectedWriteError) as err:
        store.write_lines(['store_conflict value="text" 1795392000000000001'])
    assert "conflict" in err.value.server_message


def test_unreachable_server_is_retryable():
    from greenfoundry.stack import free_port

    store = InfluxStore(
        StoreSettings(url=f"http://127.0.0.1:{free_port()}", database="x", timeout_s=1)
    )
    with pytest.raises(RetryableWriteError):
        store.write_lines(["m value=1 1"])
    assert store.ping() is None


def test_ping_reports_the_server_version(stack):
    assert store_for(stack).ping().startswith("1.")


def test_query_error_names_the_problem(stack):
    with pytest.raises(StoreError, match="InfluxDB"):
        store_for(stack).query("SELECT FROM WHERE")


def test_create_database_and_string_literals(stack):
    store = store_for(stack, database="gf_store_test")
    store.create_database()
    store.write_lines(["m,site=o'hara value=2.0 1795392000000000000"])
    df = store.query(
        f"SELECT value FROM m WHERE site = {quote_string(chr(111) + chr(39) + 'hara')} "
        "AND time >= 1795392000000000000 AND time < 1795392001000000000"
    )
    assert list(df["value"]) == [2.0]


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        # InfluxDB's own words for lines it refuses (1.x): find them and dead-letter them.
        (400, "unable to parse 'm value=': missing field value", "bad_lines"),
        (400, "partial write: points beyond retention policy dropped=1", "bad_lines"),
        (400, 'partial write: field type conflict: input field "value"', "bad_lines"),
        (413, "Request Entity Too Large", "bad_lines"),
        (422, "unprocessable", "bad_lines"),
        # Limits of the deployment reported as 400: the lines are fine, wait for the operator.
        (400, "partial write: max-series-per-database limit exceeded: (1000000)", "wait"),
        (400, "partial write: max-values-per-tag limit exceeded (100000/100000)", "wait"),
        (401, "authorization failed", "wait"),
        (403, "forbidden", "wait"),
        (404, 'database not found: "x"', "wait"),
        # Everything that may pass later, and what we do not expect, is retried.
        (500, "engine: cache maximum memory size exceeded", "retry"),
        (503, "", "retry"),
        (429, "", "retry"),
        (408, "", "retry"),
        (307, "", "retry"),
        (301, "", "retry"),
        (418, "", "retry"),
    ],
)
def test_a_failed_write_is_classified_by_what_can_fix_it(status, message, expected):
    from greenfoundry.store import classify_write_failure

    assert classify_write_failure(status, message) == expected


def test_settings_never_show_credentials():
    settings = StoreSettings(
        url="http://x", database="d", username="u", password="pw-secret", token="tok-secret"
    )
    assert "pw-secret" not in repr(settings) and "tok-secret" not in repr(settings)
