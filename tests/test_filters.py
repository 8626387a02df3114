"""filters.py: which filters fire, and refilling the dead ones without moving the output."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from srcnn_tf import export, filters, runs, weights
from srcnn_tf.model import ModelConfig, build_srcnn, conv_layers

from conftest import ROOT, natural_like, tiny_records

DEAD = (2, 1)  # a filter of each hidden layer that never fires


def _model_with_dead_filters(n1: int = 8, n2: int = 4):
    config = ModelConfig(n1=n1, n2=n2)
    model = build_srcnn(config, seed=0, dtype="float32")
    for layer, dead in zip(conv_layers(model)[:2], DEAD):
        kernel, bias = layer.get_weights()
        bias[dead] = -1e3
        layer.set_weights([kernel, bias])
    return model, config


def _patches(n: int = 24) -> np.ndarray:
    image = natural_like(80, 80, c=1, seed=3).astype(np.float32) / 255
    corners = np.random.default_rng(0).integers(0, 80 - 33, size=(n, 2))
    return np.stack([image[r:r + 33, c:c + 33] for r, c in corners])


def test_firing_rates_find_the_dead_filters():
    model, _ = _model_with_dead_filters()
    rates = filters.firing_rates(model, _patches(), batch_size=5)  # several batches
    assert [r.shape for r in rates] == [(8,), (4,)]
    for r, dead in zip(rates, DEAD):
        assert r[dead] == 0 and np.all(np.delete(r, dead) > 0) and np.all(r <= 1)
    assert filters.firing_rates(model, _patches(), batch_size=100)[1] == pytest.approx(rates[1])


def test_revive_without_noise_keeps_the_output_and_leaves_none_dead():
    model, _ = _model_with_dead_filters()
    patches = _patches()
    before = model.predict(patches, verbose=0)
    assert filters.revive(model, patches, noise=0.0) == [(1, 0), (1, 0)]
    np.testing.assert_allclose(model.predict(patches, verbose=0), before, atol=1e-5)
    kernels = [layer.get_weights()[0] for layer in conv_layers(model)]
    copied = np.flatnonzero([np.array_equal(kernels[1][..., DEAD[1]], kernels[1][..., j])
                             for j in range(4)])
    assert len(copied) == 2  # the dead filter is now one of a pair of equal filters
    np.testing.assert_array_equal(kernels[2][:, :, copied[0]], kernels[2][:, :, copied[1]])


def test_revive_with_noise_moves_the_output_a_little():
    model, _ = _model_with_dead_filters()
    patches = _patches()
    before = model.predict(patches, verbose=0)
    assert filters.revive(model, patches, noise=0.05, seed=1) == [(1, 0), (1, 0)]
    moved = np.abs(model.predict(patches, verbose=0) - before)
    assert 0 < moved.max() < 0.05


def test_split_shares_the_outgoing_weights_and_needs_a_live_filter():
    rng = np.random.default_rng(0)
    k_in, b_in, k_out = rng.normal(size=(3, 3, 1, 4)), np.zeros(4), rng.normal(size=(5, 5, 4, 2))
    rates = np.array([0.5, 0.0, 0.0, 0.2])
    new_in, new_b, new_out = filters.split_into_dead(k_in, b_in, k_out, rates, 0.0, rng)
    # the live filters' outgoing weights are shared: their sum is what the live ones sent
    np.testing.assert_allclose(new_out.sum(axis=2), k_out[:, :, [0, 3]].sum(axis=2))
    assert {tuple(new_in[..., d].ravel()) for d in (1, 2)} <= \
        {tuple(k_in[..., j].ravel()) for j in (0, 3)}
    with pytest.raises(ValueError, match="no filter of the layer fires"):
        filters.split_into_dead(k_in, b_in, k_out, np.zeros(4), 0.0, rng)


def test_dead_below_also_refills_the_rarely_firing_filters():
    rng = np.random.default_rng(0)
    k_in, b_in, k_out = rng.normal(size=(3, 3, 1, 4)), np.zeros(4), rng.normal(size=(5, 5, 4, 2))
    rates = np.array([0.5, 0.004, 0.0, 0.2])
    kept = filters.split_into_dead(k_in, b_in, k_out, rates, 0.0, rng)
    np.testing.assert_array_equal(kept[0][..., 1], k_in[..., 1])  # 0.4 % is alive by default
    new_in, _, new_out = filters.split_into_dead(k_in, b_in, k_out, rates, 0.0, rng,
                                                 dead_below=0.01)
    assert {tuple(new_in[..., d].ravel()) for d in (1, 2)} <= \
        {tuple(k_in[..., j].ravel()) for j in (0, 3)}
    np.testing.assert_allclose(new_out.sum(axis=2), k_out[:, :, [0, 3]].sum(axis=2))
    with pytest.raises(ValueError, match="more than 0.6 of the positions"):
        filters.split_into_dead(k_in, b_in, k_out, rates, 0.0, rng, dead_below=0.6)


def test_revive_counts_by_dead_below():
    model, _ = _model_with_dead_filters()
    patches = _patches()
    rates = filters.firing_rates(model, patches)
    below = float(np.sort(rates[1])[1])  # the dead one and the least firing live one
    counts = filters.revive(model, patches, noise=0.0, dead_below=below)
    assert counts[1][0] == 2
    after = filters.firing_rates(model, patches)
    assert [int((r <= below).sum()) for r in after] == [after_ for _, after_ in counts]


def test_revive_pipeline_writes_a_warm_start(tmp_path):
    record_dir = tiny_records(tmp_path, 3, (60, 60), seed=0)
    model, config = _model_with_dead_filters()
    version = export.export_saved_model(model, config, 3, str(tmp_path / "models"))
    r = subprocess.run([sys.executable, "-m", "pipelines.revive", f"--init_from={version}",
                        f"--records={record_dir}", f"--out_dir={tmp_path / 'bundle'}",
                        "--sample_every=2"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    dead = re.findall(r"(\w+): (\d+) of (\d+) filters dead on \d+ patches, (\d+) after", r.stdout)
    assert [(name, total, after) for name, _, total, after in dead] == \
        [("patch_extraction", "8", "0"), ("nonlinear_mapping", "4", "0")]
    assert all(int(before) >= 1 for _, before, _, _ in dead)  # at least the one made dead
    info = runs.describe_init(str(tmp_path / "bundle" / "srcnn_x3-1+split.npz"))
    assert info["label"] == "srcnn_x3/1+split" and info["model"]["n2"] == 4
    revived = filters.revive_weights(version, record_dir, sample_every=2)  # what it wrote
    written, _ = weights.read_weights(str(tmp_path / "bundle" / "srcnn_x3-1+split.npz"))
    for layer, (kernel, bias) in zip(conv_layers(revived.model), written):
        np.testing.assert_array_equal(layer.get_weights()[0], kernel)
        np.testing.assert_array_equal(layer.get_weights()[1], bias)
    assert revived.info["label"] == info["label"] and 0 < revived.moved[0] < 0.05
    with pytest.raises(ValueError, match="3-channel patches"):
        filters.revive_weights(version, tiny_records(tmp_path / "rgb", 3, (60, 60), seed=0,
                                                     channels=3))
    r = subprocess.run([sys.executable, "-m", "pipelines.revive", f"--init_from={version}",
                        "--records=nowhere"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode != 0 and "--records must be a records folder" in r.stderr
