"""The park file (park/config.py): the example park loads, every bad key is one error naming the
file and the key, and the anonymous labels are a stable keyed order that does not follow the
ids."""

from __future__ import annotations

import hashlib
import hmac

import pytest
import yaml

from greenfoundry.errors import ConfigError
from greenfoundry.park import config
from tests.plant import REPO

EXAMPLE = REPO / "config/parks/demo-park/park.yaml"


def test_the_example_park_loads():
    park = config.load(EXAMPLE)
    assert (park.id, park.name, park.anonymise) == ("demo-park", "Demo foundry park", False)
    assert park.plant_ids == ("park-north", "park-south")
    assert park.plant_files == tuple(
        (REPO / f"config/plants/{p}/plant.yaml").resolve() for p in park.plant_ids
    )


def _write(tmp_path, **changes):
    raw = yaml.safe_load(EXAMPLE.read_text("utf-8"))
    raw["plants"] = [
        str(REPO / "config/plants" / p / "plant.yaml") for p in ("park-north", "park-south")
    ]
    for k, v in changes.items():
        if v is None:
            raw.pop(k, None)
        else:
            raw[k] = v
    path = tmp_path / "park.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"colour": "green"}, r"park\.yaml: colour: unknown key; allowed here: "),
        ({"id": "Demo Park"}, r"park\.yaml: id: 'Demo Park' is not allowed; expected lower-case"),
        ({"name": None}, r"park\.yaml: name: missing; this key is required"),
        ({"version": 2}, r"park\.yaml: version: 2 is not allowed; expected 1"),
        (
            {"anonymise": "yes"},
            r"park\.yaml: anonymise: 'yes' is not allowed; expected true or false",
        ),
        (
            {"plants": ["a.yaml"]},
            r"park\.yaml: plants: \['a.yaml'\] is not allowed; expected a list of two or more",
        ),
        ({"plants": "x"}, r"park\.yaml: plants: 'x' is not allowed; expected a list"),
        (
            {"anonymise_key_env": "GF_NO_SUCH_PARK_KEY"},
            r"park\.yaml: anonymise_key_env: environment variable GF_NO_SUCH_PARK_KEY is not set",
        ),
    ],
)
def test_a_bad_key_is_one_error_naming_it(tmp_path, changes, message):
    with pytest.raises(ConfigError, match=message):
        config.load(_write(tmp_path, **changes), env={})


def test_a_missing_or_repeated_plant_is_named(tmp_path):
    north = str(REPO / "config/plants/park-north/plant.yaml")
    with pytest.raises(ConfigError, match=r"plants\[1\]: .*nowhere\.yaml does not exist"):
        config.load(_write(tmp_path, plants=[north, "nowhere.yaml"]))
    with pytest.raises(
        ConfigError, match=r"plants\[1\]: plant 'park-north' is already in the park"
    ):
        config.load(_write(tmp_path, plants=[north, north]))


def test_the_anonymous_order_is_the_keyed_hash_of_the_ids(tmp_path):
    path = _write(tmp_path, anonymise_key_env="GF_PARK_KEY")
    park = config.load(path, env={"GF_PARK_KEY": "s3cret"})
    assert "s3cret" not in repr(park)
    # Expected by hand: HMAC-SHA256 hex digests under the key, sorted, give A then B.
    digest = {
        p: hmac.new(b"s3cret", p.encode(), hashlib.sha256).hexdigest() for p in park.plant_ids
    }
    first, second = sorted(park.plant_ids, key=digest.get)
    assert park.labels() == {first: "Plant A", second: "Plant B"}
    # Without a key the park id is the key; the labels are the same on every load.
    assert config.load(EXAMPLE).labels() == config.load(EXAMPLE).labels()
    assert config._letters(0) == "A" and config._letters(25) == "Z" and config._letters(26) == "AA"
