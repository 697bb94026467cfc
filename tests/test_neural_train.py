"""Training over the free vector; save/load that keeps ties."""
import numpy as np
import pytest

from hmmtie.neural import (GRU, GPRGNN, ODEModel, ElmanRNN, SiameseModel, TiedDepthModel,
                           normalized_adjacency, SGD, Adam, Conv1D, Dense, GlobalPool, RCConv1D, RCDense, ReLU,
                           Sequential, TiedAutoencoder, fit, load, planted_motif_data, save)


def _model(seed=0):
    return Sequential([RCConv1D(2, 5), ReLU(), GlobalPool("max"), RCDense(4, 1)],
                      random_state=seed)


def test_each_free_parameter_is_stepped_once():
    """A weight used at 2 * n_positions places moves by exactly lr * its summed gradient."""
    X, y = planted_motif_data(16, 20, random_state=1)
    m = _model()
    theta0 = m.theta_.copy()
    _, g = m.loss_grad(None, X, y)
    fit(m, X, y, SGD(lr=0.1), n_epochs=1, batch_size=16)
    np.testing.assert_allclose(m.theta_, theta0 - 0.1 * g, atol=1e-15)
    P = m.registry.expand(m.theta_)
    np.testing.assert_array_equal(P["0.W"][:, :, 2:], P["0.W"][::-1, ::-1, :2])   # still tied


def test_fit_is_seeded_and_reduces_loss():
    X, y = planted_motif_data(64, 30, random_state=2)
    runs = []
    for _ in range(2):
        m = _model(1)
        h = fit(m, X, y, Adam(1e-2), n_epochs=5, batch_size=16, random_state=3)
        runs.append(m.theta_.copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    assert h["train_loss"][-1] < h["train_loss"][0]


def test_early_stopping_keeps_best_epoch():
    X, y = planted_motif_data(48, 30, random_state=4)
    m = _model(2)
    h = fit(m, X, y, Adam(0.05), n_epochs=30, batch_size=8, val_fraction=0.25, patience=2)
    assert len(h["val_loss"]) < 30
    best = h["best_epoch"]
    assert h["val_loss"][best] == min(h["val_loss"])
    assert len(h["val_loss"]) == best + 3


def test_save_load_roundtrip_keeps_ties(tmp_path):
    X, _ = planted_motif_data(8, 30, random_state=5)
    m = _model(3)
    m.theta_ = m.theta_ + 0.1
    save(m, tmp_path / "m.npz")
    m2 = load(tmp_path / "m.npz")
    np.testing.assert_array_equal(m2.theta_, m.theta_)
    np.testing.assert_array_equal(m2.decision_function(X), m.decision_function(X))
    with np.load(tmp_path / "m.npz") as f:
        assert f["theta"].size == m.n_params                 # atoms, not expanded copies
        np.testing.assert_array_equal(f["tie:0.W"], m.registry.ties["0.W"])
    ae = TiedAutoencoder(2, 3, 3)
    save(ae, tmp_path / "ae.npz")
    ae2 = load(tmp_path / "ae.npz")
    np.testing.assert_array_equal(ae2.registry.ties["dec.W"], ae.registry.ties["dec.W"])


def test_load_rejects_changed_tie_map(tmp_path):
    m = Sequential([Conv1D(4, 2, 3), ReLU(), GlobalPool(), Dense(2, 1)])
    save(m, tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as f:
        arrays = dict(f)
    arrays["tie:0.W"] = arrays["tie:0.W"].copy()
    arrays["tie:0.W"][0, 0, 0] = 1
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="tie map '0.W'"):
        load(tmp_path / "bad.npz")


def test_bad_arguments():
    with pytest.raises(ValueError, match="SGD"):
        SGD(lr=-1)
    with pytest.raises(ValueError, match="fit: X has 3 samples but y has 2"):
        fit(_model(), np.zeros((3, 10, 4)), np.zeros(2))


@pytest.mark.parametrize("make", [
    lambda: ElmanRNN(3, 2, 2, tying="none", lam=0.5), lambda: GRU(3, 2, 2),
    lambda: ODEModel(2, 5, "euler", "adjoint"), lambda: TiedDepthModel(2, 3),
    lambda: SiameseModel(2, 3, "alignment"),
    lambda: GPRGNN(normalized_adjacency(np.ones((3, 3)) - np.eye(3)), 2, 1, 2),
    lambda: GPRGNN(normalized_adjacency(np.ones((3, 3)) - np.eye(3)), 2, 1, 2, gamma=[1, .5, .2]),
])
def test_every_model_round_trips(tmp_path, make):
    m = make()
    m.theta_ = m.theta_ + np.linspace(-0.1, 0.1, m.n_params)
    save(m, tmp_path / "m.npz")
    m2 = load(tmp_path / "m.npz")
    assert type(m2) is type(m) and m2.get_config() == m.get_config()
    np.testing.assert_array_equal(m2.theta_, m.theta_)
    for k, t in m.registry.ties.items():
        np.testing.assert_array_equal(m2.registry.ties[k], t)
        np.testing.assert_array_equal(m2.registry.expand(m2.theta_)[k], m.registry.expand(m.theta_)[k])
