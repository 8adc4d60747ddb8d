"""A hypernetwork's identity without opening its checkpoint: complete or not, and which one."""

from __future__ import annotations

from bdc_ray import storage
from bdc_ray.artifacts.hypernet import META_FILE, hypernet_identity
from bdc_ray.artifacts.layout import RunLayout


def test_identity_is_absent_until_the_metadata_is_written_and_follows_it(tmp_path):
    folder = RunLayout(str(tmp_path)).hypernet_dir
    assert not hypernet_identity(folder).complete and hypernet_identity(folder).digest is None
    storage.write_text_atomic(storage.join(folder, META_FILE), '{"trained": 1}')
    first = hypernet_identity(folder)
    assert first.complete and first.folder == folder and first == hypernet_identity(folder)
    storage.write_text_atomic(storage.join(folder, META_FILE), '{"trained": 2}')
    assert hypernet_identity(folder).digest != first.digest
