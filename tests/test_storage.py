"""Atomic artifact writes through fsspec: local folders and an in-memory object store."""

from bdc_ray import storage


def test_atomic_writes_round_trip_locally(tmp_path):
    path = str(tmp_path / "a" / "b.json")
    storage.write_json_atomic(path, {"x": [1, 2]})
    assert storage.read_json(path) == {"x": [1, 2]}
    storage.write_bytes_atomic(str(tmp_path / "c.bin"), b"\x00\x01")
    assert (tmp_path / "c.bin").read_bytes() == b"\x00\x01"
    assert [p.name for p in tmp_path.rglob("*tmp-*")] == []  # no temporary sibling left behind


def test_object_store_paths_go_through_fsspec():
    root = "memory://bdc-test-run"
    storage.write_jsonl_atomic(storage.join(root, "t", "rows.jsonl"), [{"a": 1}, {"a": 2}])
    assert list(storage.read_jsonl(storage.join(root, "t", "rows.jsonl"))) == [{"a": 1}, {"a": 2}]
    storage.write_text_atomic(storage.join(root, "note.md"), "hello")
    assert storage.read_text(storage.join(root, "note.md")) == "hello"
