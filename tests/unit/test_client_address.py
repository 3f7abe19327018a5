"""Rate-limit keys: the socket peer, or the entry the trusted proxy appended; never a client's choice."""

from __future__ import annotations

import pytest

from shared.security import UNKNOWN_ADDRESS, client_address


def test_with_no_trusted_proxy_the_socket_peer_is_the_key_whatever_x_forwarded_for_says():
    assert client_address("203.0.113.9, 198.51.100.1", "127.0.0.2", trusted_hops=0) == "127.0.0.2"
    assert client_address(None, None, trusted_hops=0) == UNKNOWN_ADDRESS


def test_behind_one_proxy_the_last_entry_is_the_key_and_the_ones_before_it_are_ignored():
    assert client_address("10.0.0.1, 203.0.113.9:5123", "10.1.1.1", trusted_hops=1) == "203.0.113.9"
    assert client_address("anything, 10.0.0.1, 203.0.113.9", None, trusted_hops=2) == "10.0.0.1"


def test_fewer_entries_than_hops_take_the_innermost_proxys_view():
    assert client_address("203.0.113.9", None, trusted_hops=2) == "203.0.113.9"
    assert client_address("", "127.0.0.1", trusted_hops=1) == UNKNOWN_ADDRESS


@pytest.mark.parametrize(("raw", "key"), [
    ("[2001:db8:1:2:aaaa::1]:443", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:bbbb::7", "2001:db8:1:2::/64"),
    ("::ffff:203.0.113.9", "203.0.113.9"),
    ("203.0.113.9:80", "203.0.113.9"),
    (" 203.0.113.9 ", "203.0.113.9"),
])
def test_addresses_are_canonical_and_ipv6_is_keyed_by_its_64(raw, key):
    assert client_address(raw, None, trusted_hops=1) == key
