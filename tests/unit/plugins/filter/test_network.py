"""described_items names each allow-list entry by where it comes from; each value once, in input order."""

from ansible_collections.skyforge.prefect_platform.plugins.filter.network import described_items


def test_entries_are_described_by_their_source():
    cidrs = ["203.0.113.7/32", "198.51.100.23/32", "192.0.2.0/24", "203.0.113.7/32"]
    items = described_items(cidrs, ["203.0.113.7/32"], "Cloud NAT egress", "operator range",
                            {"worker egress": ["198.51.100.23/32"]})
    assert items == [{"value": "203.0.113.7/32", "description": "Cloud NAT egress"},
                     {"value": "198.51.100.23/32", "description": "worker egress"},
                     {"value": "192.0.2.0/24", "description": "operator range"}]


def test_without_more_descriptions_only_two_kinds():
    assert described_items(["198.51.100.23/32"], [], "Cloud NAT egress", "operator range") == [
        {"value": "198.51.100.23/32", "description": "operator range"}]
    assert described_items(None, None, "a", "b", {"c": None}) == []
