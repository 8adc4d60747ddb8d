"""A checkpoint folder round-trips the hypernetwork and everything needed to rebuild the solver."""

from __future__ import annotations

import pytest
import torch

from bdc_ray.customize.checkpoint import META_FILE, WEIGHTS_FILE, is_complete, load_checkpoint, save_checkpoint


def test_save_then_load_gives_the_same_hypernetwork_and_metadata(family_run, tmp_path):
    snapshot = family_run.snapshot
    folder = str(tmp_path / "hypernet")
    assert not is_complete(folder)
    save_checkpoint(folder, snapshot.state, snapshot.meta)
    assert is_complete(folder)
    hypernet, meta = load_checkpoint(folder)
    assert meta == snapshot.meta
    assert meta.embedder == "lookup" and len(meta.centroids) == 2 and meta.layers == "all"
    for key, value in snapshot.state.items():
        torch.testing.assert_close(hypernet.state_dict()[key], value, rtol=0, atol=0)
    features = torch.from_numpy(family_run.data.val_features)
    assert not hypernet.training
    assert not torch.allclose(hypernet(features), torch.full_like(hypernet(features), 0.5))  # trained, not uniform


def test_a_folder_without_its_metadata_is_not_a_checkpoint(family_run, tmp_path):
    folder = tmp_path / "half"
    save_checkpoint(str(folder), family_run.snapshot.state, family_run.snapshot.meta)
    (folder / META_FILE).unlink()
    assert (folder / WEIGHTS_FILE).exists()
    with pytest.raises(FileNotFoundError, match="no hypernetwork checkpoint"):
        load_checkpoint(str(folder))
