"""The park file: which plant configs an industrial park holds, and how its report shows them.

```yaml
version: 1
id: demo-park                  # lower-case letters, digits, '-' or '_'
name: Demo foundry park
plants:                        # plant configs, relative to this file; two or more, distinct ids
  - ../../plants/park-north/plant.yaml
  - ../../plants/park-south/plant.yaml
anonymise: false               # the report's default; `--anonymise` turns it on for one run
# anonymise_key_env: GF_PARK_KEY   # or anonymise_key_file: the key of the anonymous order
```

Read by the strict reader (`greenfoundry.inputs`): an unknown key, a key given twice, a missing
plant file or two plant files of the same plant id is one error naming the file and the key.
Each plant config is loaded with `greenfoundry.plant.load` (its own errors name its own file).
The key of the anonymous order is a secret like any other (`<name>_env` / `<name>_file`): with
it, the order of "Plant A/B/C" cannot be recomputed from the plant ids by someone who knows
them; without it the park's id is the key, which still hides nothing of the ids in the file but
gives an order anyone holding the ids can reproduce (say so to the park's readers).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field
from pathlib import Path

from greenfoundry import inputs
from greenfoundry.errors import ConfigError
from greenfoundry.plant import ID_RE, ID_RULE, _secret


@dataclass(frozen=True)
class Park:
    id: str
    name: str
    path: Path  # the park file
    plant_files: tuple[Path, ...]  # absolute, in the file's order
    plant_ids: tuple[str, ...]  # the plant.id of each file, same order
    anonymise: bool
    anonymise_key: str = field(repr=False, default="")

    def labels(self) -> dict[str, str]:
        """plant id → "Plant A", "Plant B", … in the order of HMAC-SHA256(key, id): stable for a
        park and key, unrelated to the ids' order or the file's."""
        key = (self.anonymise_key or self.id).encode("utf-8")
        order = sorted(
            self.plant_ids,
            key=lambda pid: hmac.new(key, pid.encode("utf-8"), hashlib.sha256).hexdigest(),
        )
        return {pid: f"Plant {_letters(i)}" for i, pid in enumerate(order)}


def _letters(i: int) -> str:
    """0 → A, 25 → Z, 26 → AA: a park of more than 26 plants still gets distinct labels."""
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        out = chr(ord("A") + r) + out
    return out


def load(path: str | os.PathLike, env: dict[str, str] | None = None) -> Park:
    """Load and validate a park file (`env`: where `anonymise_key_env` is looked up; default
    the process environment)."""
    path = Path(path)
    raw, file = inputs.read(path, "the park file", ConfigError)
    return parse(raw, base=path.parent, path=path, file=file, env=env)


def parse(
    raw, *, base: Path, path: Path, file: str | None = None, env: dict[str, str] | None = None
) -> Park:
    from greenfoundry import plant

    top = inputs.Node(raw, "", file=file or inputs.display(path), error=ConfigError)
    top.choice("version", (1,))
    park_id = top.text("id", pattern=ID_RE, expected=ID_RULE)
    name = top.text("name")
    anonymise = top.boolean("anonymise", False)
    secret = _secret(top, "anonymise_key", dict(os.environ) if env is None else env)
    files, ids = [], []
    entries = top.list("plants", required=True)
    if len(entries) < 2:
        top.refuse("plants", entries, "a list of two or more plant config files")
    for where, item in top.items("plants", required=True):
        if not isinstance(item, str) or not item.strip():
            top.fail(f"{inputs.show(item)} is not allowed; expected a plant config file", at=where)
        p = (base / item).resolve()
        if not p.is_file():
            top.fail(f"{p} does not exist; expected a plant config file", at=where)
        cfg = plant.load(p, resolve_secrets=False)
        if cfg.plant.id in ids:
            other = files[ids.index(cfg.plant.id)]
            top.fail(f"plant {cfg.plant.id!r} is already in the park ({other})", at=where)
        files.append(p)
        ids.append(cfg.plant.id)
    top.done()
    return Park(
        id=park_id,
        name=name,
        path=path.resolve(),
        plant_files=tuple(files),
        plant_ids=tuple(ids),
        anonymise=anonymise,
        anonymise_key=secret.value if secret is not None else "",
    )
