"""Store: reads and writes of one bucket (update_json is the read-modify-write of decision records)."""

from __future__ import annotations


def test_update_json_adds_fields_and_keeps_the_rest(store):
    store.put_json("decisions/m/r.json", {"promote": True, "reasons": ["ok"]})
    assert store.update_json("decisions/m/r.json", registered_version="3") is True
    assert store.get_json("decisions/m/r.json") == {"promote": True, "reasons": ["ok"], "registered_version": "3"}


def test_update_json_of_a_missing_record_writes_nothing(store):
    assert store.update_json("decisions/m/none.json", x=1) is False
    assert not store.exists("decisions/m/none.json")


def test_key_of_refuses_another_buckets_uri(store):
    assert store.key_of(store.uri("a/b.json")) == "a/b.json"
    import pytest

    with pytest.raises(ValueError, match="not in bucket"):
        store.key_of("s3://elsewhere/a/b.json")


def test_exists_list_and_round_trips(store):
    assert not store.exists("x/one.txt")
    store.put_text("x/one.txt", "hello")
    store.put_bytes("x/two.bin", b"\x00\x01")
    assert store.exists("x/one.txt")
    assert store.get_bytes("x/one.txt") == b"hello"
    assert [item.key for item in store.list("x/")] == ["x/one.txt", "x/two.bin"]
    assert [item.size for item in store.list("x/")] == [5, 2]
