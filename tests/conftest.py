"""Fixtures that start real servers: a Mosquitto and an InfluxDB with authentication on, on free
ports, with their own data directories, through the same code as `greenfoundry stack up`.

`stack` is shared by the whole session (tests use distinct plant ids, client ids and time ranges
so they do not see each other's data); `own_stack` gives a test its own servers, for tests that
stop and restart them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from greenfoundry.stack import LocalStack, StackInfo

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory) -> LocalStack:
    stack = LocalStack(tmp_path_factory.mktemp("stack"))
    stack.up()
    yield stack
    stack.down()


@pytest.fixture(scope="session")
def stack(local_stack) -> StackInfo:
    return local_stack.info


@pytest.fixture
def own_stack(tmp_path) -> LocalStack:
    stack = LocalStack(tmp_path / "stack")
    stack.up()
    yield stack
    stack.down()
