"""The agent's configuration as data: one builder for the in-process harness
(`config_from_dict(agent_config(...))`) and for the agent run as a process
(`write_config(path, process_config(...))`, TOML by devtools.toml).

A variant is a different argument, never an edit of the text: a test that needs a
`pos_id` or another timeout says so in the data it passes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from agent.paytm.checksum import MerchantKey
from agent.sim.paytm import DEMO_KEY, DEMO_MID
from devtools import toml
from devtools.toml import Table, Value

# The demo merchant key as its key file holds it (DEMOKEY123456789).
DEMO_KEY_TEXT: Final = DEMO_KEY.secret_bytes.decode("ascii")
# The same secret as the agent's clients hold it: `DEMO_KEY` is the emulator's own key type
# (it signs with its own code), so a client, an Agent or the client's checksum gets this.
CLIENT_DEMO_KEY: Final = MerchantKey(DEMO_KEY.secret_bytes)
# Benchmarks: poll as fast as the agent allows, never give a sale up as unknown.
POLLING_FAST: Final[Mapping[str, float]] = {
    "first_check_s": 0, "interval_s": 0.001, "slow_after_s": 600, "slow_interval_s": 0.01,
    "unknown_after_s": 600, "not_found_grace_s": 600}
# Never the operator's port 8765: agents of benches and tests run side by side.
LOOPBACK_HTTP: Final[Mapping[str, str]] = {"listen": "127.0.0.1:0"}


@dataclass(frozen=True, slots=True)
class LaneSpec:
    name: str
    link: str  # serial:///dev/pts/N (options may follow: ?protocol=2) or tcp://127.0.0.1:PORT
    tid: str
    pos_id: str = ""  # empty: none in the config (the agent's default)

    def table(self) -> dict[str, str]:
        out = {"name": self.name, "link": self.link, "tid": self.tid}
        if self.pos_id:
            out["pos_id"] = self.pos_id
        return out


def write_key(directory: Path) -> Path:
    """The demo merchant key in a file only its owner reads, as the agent demands."""
    path = directory / "merchant.key"
    path.write_text(DEMO_KEY_TEXT + "\n")
    os.chmod(path, 0o600)
    return path


def agent_config(*, base_url: str, journal: Path, key_file: Path | str,
                 lanes: Sequence[LaneSpec | Table], polling: Table,
                 paytm: Table | None = None, **sections: Table) -> dict[str, Value]:
    """A config document: the demo merchant on `base_url` (EDC and PG alike), `paytm` for
    its other keys (timeouts), and any further top-level `sections` as they are."""
    return {
        "paytm": {"mid": DEMO_MID, "merchant_key_file": str(key_file),
                  "edc_base_url": base_url, "pg_base_url": base_url, **(paytm or {})},
        "polling": dict(polling),
        "journal": {"path": str(journal)},
        **sections,
        "lanes": [lane.table() if isinstance(lane, LaneSpec) else lane for lane in lanes],
    }


def process_config(*, base_url: str, journal: Path, key_file: Path,
                   lanes: Sequence[LaneSpec | Table], polling: Table = POLLING_FAST,
                   paytm: Table | None = None, log_level: str = "info") -> dict[str, Value]:
    """A config for `python -m agent run`: its page on a free loopback port, logging at
    the production level unless told otherwise."""
    return agent_config(base_url=base_url, journal=journal, key_file=key_file, lanes=lanes,
                        polling=polling, paytm=paytm, http=LOOPBACK_HTTP,
                        log={"level": log_level})


def write_config(path: Path, config: Table) -> Path:
    path.write_text(toml.dumps(config))
    return path
