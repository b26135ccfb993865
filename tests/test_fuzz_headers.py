"""Hypothesis fuzzing of the WWW-Authenticate and Link parsers: documented never to raise.

Set ``OCINB_FUZZ_EXAMPLES`` (default 300) for longer runs, e.g. ``OCINB_FUZZ_EXAMPLES=10000``.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocinb._http.headers import Challenge, Link, next_link, parse_link, parse_www_authenticate

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("OCINB_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Pieces that steer the generator into the parsers' interesting states.
_PIECES = ['"', "\\", ",", "=", ";", "<", ">", " ", "\t", "Bearer", "Basic", "realm", "scope", "rel", "next",
           'realm="', '"x,y"', "==", "https://a/b?c=d", "error=insufficient_scope", "</p?n=1>", "\x00", "é"]
header_text = st.one_of(
    st.text(max_size=300),
    st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=5)), max_size=40).map("".join),
)
base_urls = st.one_of(st.just(""), st.just("http://127.0.0.1:5000/v2/a/tags/list?n=1"), st.text(max_size=40))


@FUZZ
@given(header_text)
def test_www_authenticate_never_raises(value: str) -> None:
    challenges = parse_www_authenticate(value)
    assert isinstance(challenges, list)
    for c in challenges:
        assert isinstance(c, Challenge) and c.scheme == c.scheme.lower() and c.scheme
        assert all(k == k.lower() for k in c.params)
        assert isinstance(c.scopes, list)


@FUZZ
@given(header_text, base_urls)
def test_link_never_raises(value: str, base: str) -> None:
    links = parse_link(value, base)
    assert isinstance(links, list) and all(isinstance(link, Link) for link in links)
    nxt = next_link(value, base)
    assert nxt is None or isinstance(nxt, str)


@FUZZ
@given(st.text(alphabet=st.characters(exclude_characters='"\\', exclude_categories=["Cs"]), max_size=30),
       st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789:/,._-*", max_size=40))
def test_www_authenticate_roundtrip(realm: str, scope: str) -> None:
    """Any realm and scope, quoted, come back exactly."""
    [c] = parse_www_authenticate(f'Bearer realm="{realm}",service="svc",scope="{scope}"')
    assert (c.realm, c.service, c.params["scope"]) == (realm, "svc", scope)
