"""Store.update_json: the one read-modify-write used for decision records."""

from __future__ import annotations


def test_update_json_adds_fields_and_keeps_the_rest(store):
    store.put_json("decisions/m/r.json", {"promote": True, "reasons": ["ok"]})
    assert store.update_json("decisions/m/r.json", registered_version="3") is True
    assert store.get_json("decisions/m/r.json") == {"promote": True, "reasons": ["ok"], "registered_version": "3"}


def test_update_json_of_a_missing_record_writes_nothing(store):
    assert store.update_json("decisions/m/none.json", x=1) is False
    assert not store.exists("decisions/m/none.json")
