"""Pure parts of the local stack (the servers themselves are exercised by every server test)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from greenfoundry.errors import StackError
from greenfoundry.stack import find_binary, mosquitto_password_line


def test_a_missing_binary_stops_with_one_line_naming_the_package():
    with pytest.raises(StackError) as err:
        find_binary("influxd-not-here", install=False)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("influxd-not-here is not installed: install the Debian package")


def test_the_password_file_line_is_mosquittos_pbkdf2_format():
    line = mosquitto_password_line("ingest", "s3cret")
    user, rest = line.rstrip("\n").split(":", 1)
    _, kind, iterations, salt, digest = rest.split("$")
    assert (user, kind, iterations) == ("ingest", "7", "101")
    # Recompute PBKDF2-HMAC-SHA512 from the salt in the line: the digest must match.
    expected = hashlib.pbkdf2_hmac("sha512", b"s3cret", base64.b64decode(salt), 101)
    assert base64.b64decode(digest) == expected
    assert len(base64.b64decode(salt)) == 12
    assert "s3cret" not in line
