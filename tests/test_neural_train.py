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
    for make in (lambda: SGD(lr=np.nan), lambda: Adam(lr=np.nan), lambda: Adam(eps=-1)):
        with pytest.raises(ValueError, match="finite lr > 0"):
            make()
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


# --------------------------------------------------------------------------
# Found by review (fresh eyes, neural package)

def test_custom_tie_maps_round_trip(tmp_path):
    """A Toeplitz Dense (the conv's tie map on a dense layer), a locally
    connected layer tied across positions and a palindromic Conv1D map are
    saved with the model and rebuilt on load (load refused them before)."""
    from hmmtie.neural import Flatten, LocallyConnected1D, palindromic_tie, toeplitz_tie
    rng = np.random.default_rng(0)
    conv = Conv1D(4, 2, 3, padding="same")
    L = 12
    tt = toeplitz_tie(conv, L)
    W, n = palindromic_tie(3, 4, 2)
    models = [
        Sequential([Flatten(), Dense(L * 4, L * 2, tie=tt, n_atoms=conv.n_atoms), ReLU(), Dense(L * 2, 1)]),
        Sequential([LocallyConnected1D.from_conv(conv, L), ReLU(), GlobalPool(), Dense(2, 1)]),
        Sequential([Conv1D(4, 2, 3, tie={"W": W, "b": n + np.arange(2)}, n_atoms=n + 2), GlobalPool(),
                    Dense(2, 1)]),
    ]
    X = rng.normal(size=(5, L, 4))
    for k, m in enumerate(models):
        m.theta_ = m.theta_ + rng.normal(0, 0.1, m.n_params)
        save(m, tmp_path / f"m{k}.npz")
        m2 = load(tmp_path / f"m{k}.npz")
        assert m2.n_params == m.n_params and m2.get_config() == m.get_config()
        np.testing.assert_array_equal(m2.decision_function(X), m.decision_function(X))
        for name, t in m.registry.ties.items():
            np.testing.assert_array_equal(m2.registry.ties[name], t)


def test_load_names_a_bad_file(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        load(tmp_path / "nope.npz")
    (tmp_path / "text.npz").write_text("not a model")
    with pytest.raises(ValueError, match="is not a model saved by hmmtie.neural.save"):
        load(tmp_path / "text.npz")
    with pytest.raises(ValueError, match="does not exist"):
        save(_model(), tmp_path / "no" / "m.npz")


def test_review30_bad_arguments_are_one_line_errors(tmp_path):
    """Each gave a TypeError, AttributeError or KeyError from deep inside."""
    import json
    from hmmtie.neural import Flatten, one_hot
    X = one_hot(["ACGTACGTAC"] * 3)
    cases = [
        (lambda: SGD(lr="0.1"), "SGD: lr must be a number, got '0.1'"),
        (lambda: SGD(lr=None), "SGD: lr must be a number, got None"),
        (lambda: Adam(beta1="0.9"), "Adam: beta1 must be a number, got '0.9'"),
        (lambda: SiameseModel(delta="0.1"), "delta must be a finite number >= 0, got '0.1'"),
        (lambda: fit(Sequential([Flatten(), Dense(40, 1)]), X, np.zeros(3), optimizer="adam"),
         r"fit: optimizer must be an optimizer object .* got 'adam'"),
        (lambda: fit(Sequential([Flatten(), Dense(40, 1)]), ["ACGT"] * 3, np.zeros(3)),
         r"fit: X holds strings; encode sequences first \(hmmtie.neural.one_hot\)"),
        (lambda: fit(Sequential([Flatten(), Dense(4, 1)]), np.array(["ACGT"] * 3), np.zeros(3)),
         "fit: X must hold numbers, got an array of dtype <U4"),
        (lambda: Sequential([Flatten(), "dense"]), "Sequential: layer 1 is 'dense', not a layer"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()
    # metadata: missing keys, bad JSON, a newer format
    save(_model(), tmp_path / "m.npz")
    f = dict(np.load(tmp_path / "m.npz"))
    meta = json.loads(str(f["meta"]))
    for name, m, message in (
            ("noconfig", {k: v for k, v in meta.items() if k != "config"}, "its metadata lacks config"),
            ("future", {**meta, "format_version": 99}, "has format_version 99; this hmmtie reads versions up to 1"),
            ("badjson", "{not json", "its metadata is not valid JSON")):
        f["meta"] = np.array(m if isinstance(m, str) else json.dumps(m))
        np.savez(tmp_path / f"{name}.npz", **f)
        with pytest.raises(ValueError, match=message):
            load(tmp_path / f"{name}.npz")
    assert np.array_equal(load(tmp_path / "m.npz").theta_, _model().theta_)


def test_targets_of_another_shape_are_refused():
    """mse broadcast (n,) targets against (n, 1) outputs to an (n, n) error
    (found by review): a wrong loss, no message."""
    rng = np.random.default_rng(1)
    m = Sequential([Dense(3, 1)], loss="mse")
    X, y = rng.normal(size=(5, 3)), rng.normal(size=5)
    with pytest.raises(ValueError, match=r"mse: targets y have shape \(5,\), but the model's output has "
                                         r"shape \(5, 1\)"):
        m.loss(None, X, y)
    assert m.loss(None, X, y[:, None]) > 0
    b = Sequential([Dense(3, 1)])
    with pytest.raises(ValueError, match=r"bce: targets y have shape \(5, 1\)"):
        b.loss(None, X, (y[:, None] > 0).astype(float))
    d = TiedDepthModel(3, 2)
    with pytest.raises(ValueError, match=r"targets y have shape \(5, 1\)"):
        fit(d, X, y[:, None], n_epochs=1)


def test_fit_refuses_bad_data_and_settings():
    X, y = planted_motif_data(16, 20, random_state=1)
    m = _model()
    theta0 = m.theta_.copy()
    Xn = X.copy()
    Xn[3, 4, 0] = np.nan
    for kwargs, message in (
            (dict(X_val=Xn[:4], y_val=y[:4]), r"X_val holds a NaN or infinite value \(first at index \(3, 4, 0\)\)"),
            (dict(X_val=X[:4]), "give X_val and y_val together"),
            (dict(batch_size=0), "batch_size must be an integer >= 1"),
            (dict(batch_size=2.5), "batch_size must be an integer >= 1"),
            (dict(n_epochs=-1), "n_epochs must be an integer >= 0"),
            (dict(patience=2), "patience needs validation data"),
            (dict(val_fraction=0.99), "leaves none to train on")):
        with pytest.raises(ValueError, match=message):
            fit(m, X[:8] if "val_fraction" in kwargs else X, y[:8] if "val_fraction" in kwargs else y,
                n_epochs=kwargs.pop("n_epochs", 1), **kwargs)
    with pytest.raises(ValueError, match="X holds no samples"):
        fit(m, X[:0], y[:0])
    with pytest.raises(ValueError, match=r"X holds a NaN"):
        fit(m, Xn, y)
    np.testing.assert_array_equal(m.theta_, theta0)  # nothing was trained
    # a learning rate that diverges is an error, not NaN parameters
    r = Sequential([Dense(3, 1)], loss="mse")
    Xr = np.random.default_rng(0).normal(size=(20, 3)) * 1e3
    with pytest.raises(ValueError, match="the training loss became"), np.errstate(over="ignore", invalid="ignore"):
        fit(r, Xr, Xr[:, :1] * 1e150, SGD(lr=1e10), n_epochs=50, batch_size=20)
    assert np.all(np.isfinite(r.theta_))


def test_fit_trains_autoencoders_graphs_and_ragged_pairs():
    """fit failed with a TypeError for the autoencoder, a shape error for
    GPRGNN batches and a numpy error for pairs of unequal lengths."""
    rng = np.random.default_rng(2)
    ae = TiedAutoencoder(4, 3, 3)
    Xa = rng.normal(size=(12, 10, 4))
    h = fit(ae, Xa, optimizer=Adam(1e-2), n_epochs=5, batch_size=4)
    assert h["train_loss"][-1] < h["train_loss"][0]
    with pytest.raises(ValueError, match="trained on X alone"):
        fit(ae, Xa, Xa)
    A = normalized_adjacency(np.ones((6, 6)) - np.eye(6))
    g = GPRGNN(A, 3, 1, 2)
    Xg, Yg = rng.normal(size=(6, 3)), rng.normal(size=(6, 1))
    before = g.loss(None, Xg, Yg)
    fit(g, Xg, Yg, Adam(1e-2), n_epochs=20, batch_size=6)
    assert g.loss(None, Xg, Yg) < before
    with pytest.raises(ValueError, match="trains on the whole graph at once"):
        fit(g, Xg, Yg, batch_size=4)
    s = SiameseModel(2, 3, "distance")
    pairs = [(rng.normal(size=(int(rng.integers(5, 9)), 4)), rng.normal(size=(int(rng.integers(5, 9)), 4)))
             for _ in range(8)]
    t = rng.normal(size=8)
    h = fit(s, pairs, t, Adam(1e-2), n_epochs=5, batch_size=3, val_fraction=0.25)
    assert len(h["val_loss"]) == 5 and np.isfinite(h["train_loss"]).all()


def test_data_helpers_and_inputs_are_checked():
    from hmmtie.neural import appnp_coefficients, ctcf_pwm

    bad_pwm = np.full((5, 4), 0.3)
    for call, message in (
            (lambda: planted_motif_data(10, 30, pwm=bad_pwm), "sum to 1"),
            (lambda: planted_motif_data(-1, 30), "n must be an integer >= 0"),
            (lambda: ctcf_pwm(-1), "pseudocount must be a finite number >= 0"),
            (lambda: normalized_adjacency(np.array([[0.0, 1.0], [0.0, 0.0]])), "symmetric"),
            (lambda: appnp_coefficients(0.1, -1), "n_hops must be an integer >= 0"),
            (lambda: _model().decision_function(np.full((2, 10, 4), np.nan)), "inputs hold a NaN"),
            (lambda: _model().loss(None, np.full((2, 10, 4), np.inf), np.zeros(2)), "inputs hold a NaN"),
            (lambda: _model().decision_function(np.zeros((0, 10, 4))), "no samples")):
        with pytest.raises(ValueError, match=message):
            call()
