"""The emulator's raw member text (jsonraw.py): exact text as sent, judged by json.loads.

And a cross check with the client's own `agent.paytm.jsontext.member_text`, an
independent implementation: on any document both must cut out the same text.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.paytm.jsontext import member_text
from agent.sim.paytm.jsonraw import member_raw

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=10,
)
spacing = st.sampled_from(["", " ", "\n", "\t ", "\r\n  "])


@st.composite
def documents(draw: st.DrawFn) -> str:
    """A JSON object written with arbitrary spacing, escapes and repeated names."""
    names = draw(st.lists(st.sampled_from(["body", "head", "bo\"dy", "x", "ü", "body "]),
                          max_size=6))
    ascii_only = draw(st.booleans())
    members = []
    for name in names:
        value = json.dumps(draw(json_values), ensure_ascii=ascii_only,
                           indent=draw(st.sampled_from([None, 1])))
        members.append(draw(spacing) + json.dumps(name, ensure_ascii=ascii_only) + draw(spacing)
                       + ":" + draw(spacing) + value + draw(spacing))
    return draw(spacing) + "{" + ",".join(members) + draw(spacing) + "}" + draw(spacing)


def test_the_exact_text_of_body() -> None:
    text = ' {"head" : {"a": [1, {"x": "}\\""}]},\n "body" :  {"b" : 1.5e3 } , "z": null} '
    assert member_raw(text, "body") == '{"b" : 1.5e3 }'
    assert member_raw(text, "head") == '{"a": [1, {"x": "}\\""}]}'
    assert member_raw(text, "z") == "null"


def test_a_name_given_twice_is_its_last_value_as_json_loads_reads_it() -> None:
    assert member_raw('{"body": {"a": 1}, "body": {"a": 2}}', "body") == '{"a": 2}'


@pytest.mark.parametrize("text", ["", "{", "[]", '"body"', "null", '{"body": }', "{} {}",
                                  '{"head": 1}', '{"a": {"body": 1}}', '{"body" 1}'])
def test_no_member_or_no_object_is_none(text: str) -> None:
    assert member_raw(text, "body") is None


@settings(max_examples=400, deadline=None)
@given(documents(), st.sampled_from(["body", "head", "bo\"dy", "ü", "absent"]))
def test_the_text_is_the_value_json_loads_reads(text: str, name: str) -> None:
    document = json.loads(text)
    raw = member_raw(text, name)
    if name not in document:
        assert raw is None
    else:
        assert raw is not None and raw in text
        assert json.loads(raw) == document[name]
        assert raw == raw.strip()


@settings(max_examples=400, deadline=None)
@given(documents(), st.sampled_from(["body", "head", "absent"]))
def test_client_and_emulator_cut_out_the_same_text(text: str, name: str) -> None:
    assert member_raw(text, name) == member_text(text, name)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_text_never_raises(text: str) -> None:
    assert member_raw(text, "body") == member_text(text, "body")
