"""devtools.toml against tomllib: whatever it writes reads back as the data it was given."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devtools import toml
from devtools.config import LaneSpec, process_config, write_key
from devtools.toml import Table

keys = st.text(min_size=1, max_size=8)
scalars = st.one_of(st.text(max_size=12), st.integers(-(2**63), 2**63 - 1), st.booleans(),
                    st.floats(allow_nan=False))
values = st.one_of(scalars, st.lists(scalars, max_size=4))
tables = st.recursive(
    st.dictionaries(keys, values, max_size=4),
    lambda inner: st.dictionaries(keys, st.one_of(values, inner,
                                                  st.lists(inner, min_size=1, max_size=3)),
                                  max_size=4),
    max_leaves=12)


@given(tables)
def test_what_is_written_reads_back(table: Table) -> None:
    assert tomllib.loads(toml.dumps(table)) == table


def test_nan_and_infinities() -> None:
    back = tomllib.loads(toml.dumps({"a": math.inf, "b": -math.inf, "c": math.nan}))
    assert back["a"] == math.inf and back["b"] == -math.inf and math.isnan(back["c"])


def test_anything_else_is_refused() -> None:
    path: Any = Path("/tmp")  # what a careless caller passes: not a TOML value
    with pytest.raises(TypeError):
        toml.dumps({"path": path})


def test_a_process_config_reads_back_as_built(tmp_path: Path) -> None:
    config = process_config(base_url="http://127.0.0.1:1", journal=tmp_path / "j.db",
                            key_file=write_key(tmp_path),
                            lanes=[LaneSpec("till-1", "serial:///dev/pts/9", "12345678",
                                            pos_id="S1_1")])
    assert tomllib.loads(toml.dumps(config)) == config
