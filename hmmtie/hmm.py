"""Hidden Markov models with declaratively tied parameters.

:class:`CategoricalHMM` (discrete symbols) and :class:`GaussianHMM`
(continuous frames, diagonal covariance) follow scikit-learn and hmmlearn
conventions: the constructor stores settings, :meth:`fit` learns and returns
``self``, fitted values end in ``_`` (``startprob_``, ``transmat_``,
``emissionprob_``, ``means_``, ``covars_``).  Every learnable value is held
through the tie maps of :mod:`hmmtie.tying`; the models contain no tying
logic of their own.
"""
from __future__ import annotations

import json
import math

import numpy as np
from numpy.typing import NDArray

from . import tying as _tying
from ._kernels import hmm as _k
from ._validation import (
    NotFittedError,
    check_choice,
    check_features,
    check_int,
    check_kwargs,
    check_number,
    check_prob_array,
    check_random_state,
    check_symbols,
    numba_threads,
    split_input,
)

__all__ = ["CategoricalHMM", "GaussianHMM"]

_LOG_2PI = math.log(2 * math.pi)


def _check_prior(name, value, shape):
    try:
        if value is None or isinstance(value, (bool, np.bool_, str)):
            raise ValueError
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number >= 1 or an array of them, got {value!r}") from None
    try:
        arr = np.broadcast_to(arr, shape)
    except ValueError:
        raise ValueError(f"{name} must be a scalar or have shape {shape}, got shape {np.shape(value)}") from None
    if not np.all(np.isfinite(arr)) or np.any(arr < 1):
        raise ValueError(
            f"{name} must be Dirichlet concentrations >= 1 (1 = no prior), got min {np.min(arr):.6g}"
        )
    return arr


def _log(a):
    with np.errstate(divide="ignore"):
        return np.log(a)



def _refuse_undefined(logprob, what):
    """A sequence with probability 0 (or a log-likelihood beyond the float
    range) has no posteriors or best path: one line naming it, never rows
    of zeros or an impossible path."""
    bad = ~np.isfinite(logprob)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        why = ("has probability 0 under the model" if logprob[k] == -np.inf
               else f"has log-likelihood {logprob[k]} (values beyond the float range?)")
        raise ValueError(f"sequence {k + 1} (1-based) {why}: its {what} undefined")

def _refuse_lost_posteriors(gamma, offsets):
    """The scaled forward-backward keeps each frame's values within the
    float range relative to the frame's largest; a model whose transitions
    or emission ratios span more than that (1e-137 and 1e-221 transitions
    in one review's example) can lose every value of some frame, and its
    posteriors come out NaN though the likelihood is finite.  One line
    naming the sequence and frame, never NaN rows."""
    bad = ~np.isfinite(gamma).all(axis=1)
    if bad.any():
        t = int(np.flatnonzero(bad)[0])
        k = int(np.searchsorted(offsets, t, side="right")) - 1
        raise ValueError(
            f"sequence {k + 1} (1-based), frame {t - int(offsets[k]) + 1}: state posteriors lost to "
            "underflow (the model's transition or emission probabilities span more than the float "
            "range allows, e.g. transitions near 1e-200 beside 1); they are undefined here")


class _BaseHMM:
    """Shared machinery of the HMMs (not public)."""

    _family: str = ""
    _param_letters = "ste"
    _base_settings = (
        "n_states", "states", "tying", "n_iter", "tol", "params", "init_params",
        "random_state", "startprob_prior", "transmat_prior", "n_threads", "verbose",
    )
    _extra_settings: tuple = ()

    def __init__(
        self,
        n_states: int | None = None,
        *,
        states=None,
        tying: dict | None = None,
        n_iter: int = 100,
        tol: float = 1e-4,
        params: str = "ste",
        init_params: str = "ste",
        random_state=None,
        startprob_prior=1.0,
        transmat_prior=1.0,
        n_threads: int | None = None,
        verbose: bool = False,
        **kwargs,
    ):
        self.n_states = n_states
        self.states = states
        self.tying = tying
        self.n_iter = n_iter
        self.tol = tol
        self.params = params
        self.init_params = init_params
        self.random_state = random_state
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.n_threads = n_threads
        self.verbose = verbose
        extra = {k: kwargs.pop(k) for k in list(kwargs) if k in self._extra_settings}
        check_kwargs(type(self).__name__, kwargs, self._base_settings + self._extra_settings)
        for k in self._extra_settings:
            setattr(self, k, extra.get(k, self._extra_defaults()[k]))
        # Validate the structure now: a bad spec fails when the model is built.
        self._state_names()
        self._compiled = None
        self._compile(allow_partial=True)

    # ----------------------------------------------------------- structure
    @classmethod
    def _extra_defaults(cls) -> dict:
        return {}

    def get_params(self) -> dict:
        """Constructor settings as a dict (scikit-learn convention)."""
        keys = self._base_settings + self._extra_settings
        return {k: getattr(self, k) for k in keys}

    def _state_names(self) -> list[str]:
        if self.states is not None:
            if isinstance(self.states, str):
                # a string would be read as one state per character
                raise ValueError(f"states must be a list of state names, not the string {self.states!r}")
            names = [str(s) for s in self.states]
            if len(names) == 0:
                raise ValueError("states must name at least one state")
            if len(set(names)) != len(names):
                dup = next(s for s in names if names.count(s) > 1)
                raise ValueError(f"states: name {dup!r} is used twice")
            if self.n_states is not None and self.n_states != len(names):
                raise ValueError(f"n_states={self.n_states} but {len(names)} state names were given")
            return names
        if self.n_states is None:
            raise ValueError("give n_states (an integer >= 1) or states (a list of names)")
        n = check_int("n_states", self.n_states, low=1)
        return [str(i) for i in range(n)]

    @property
    def n_components(self) -> int:
        """Number of states (hmmlearn's name)."""
        return len(self._state_names())

    def _emission_size_known(self) -> bool:
        raise NotImplementedError

    def _compile(self, allow_partial=False):
        states = self._state_names()
        for letters, name in ((self.params, "params"), (self.init_params, "init_params")):
            if not isinstance(letters, str) or set(letters) - set(self._param_letters):
                raise ValueError(
                    f"{name} must be a string of letters from {self._param_letters!r}, got {letters!r}"
                )
        if not self._emission_size_known():
            if not allow_partial:
                raise NotFittedError(f"{type(self).__name__}: n_symbols is unknown; call fit first")
            # Check everything but the emission cells now; those once the alphabet is known.
            spec = dict(self.tying or {})
            if isinstance(spec.get("fixed"), dict):
                spec["fixed"] = {k: v for k, v in spec["fixed"].items() if k != "emissionprob"}
            _tying.compile_hmm_spec(spec, states, family=self._family, n_symbols=1)
            return None
        self._compiled = _tying.compile_hmm_spec(self.tying, states, family=self._family, **self._compile_kwargs())
        self._compiled_key = self._tie_key()
        return self._compiled

    def _tie_key(self):
        """What the compiled tie spec depends on (recompiled when it changes:
        a new tying dict, states, or alphabet/feature count set by hand)."""
        return (json.dumps(self.tying, sort_keys=True, default=repr), tuple(self._state_names()),
                repr(sorted(self._compile_kwargs().items())), self.params, self.init_params)

    def _compile_kwargs(self) -> dict:
        return {}

    @property
    def tie_(self) -> _tying.HMMTying:
        """The compiled tie spec (index maps and probability blocks)."""
        if self._compiled is None or getattr(self, "_compiled_key", None) != self._tie_key():
            self._compile()
        return self._compiled

    # -------------------------------------------------------------- params
    def _check_fitted(self):
        for name in self._param_names():
            if getattr(self, name, None) is None:
                raise NotFittedError(
                    f"{type(self).__name__} has no {name}; call fit first (or set {name})"
                )

    def _param_names(self):
        return ("startprob_", "transmat_")

    def _check_params(self):
        self._check_fitted()
        k = self.n_components
        self.startprob_ = check_prob_array("startprob_", self.startprob_, (k,))
        self.transmat_ = check_prob_array("transmat_", self.transmat_, (k, k))
        self._check_emission_params()
        # user-set parameters must respect the tie spec (tied cells equal,
        # fixed cells at their values): n_free_parameters, AIC, BIC and the
        # LRT count them as tied
        self._atoms_from_params(self.tie_)

    # ----------------------------------------------------------- inference
    def _prepare(self, X, lengths):
        raise NotImplementedError

    def _frames(self, data):
        """(frameprob, log_offset) of shape (T, K) and (T,)."""
        raise NotImplementedError

    def score(self, X, lengths=None) -> float:
        """Total log-likelihood of ``X`` (natural log) by the forward algorithm.

        Parameters
        ----------
        X : array of shape (n_samples, n_features) or list of sequences
        lengths : array of int, optional
            Lengths of the concatenated sequences (hmmlearn style).
        """
        each = self._score_each(X, lengths)
        if np.isnan(each).any():  # -inf (probability 0) is an answer, NaN is not
            _refuse_undefined(each, "log-likelihood is")
        return float(each.sum())

    def _score_each(self, X, lengths):
        self._check_params()
        data = self._prepare(X, lengths)
        with numba_threads(self.n_threads, self._work(data)):
            return self._loglik(data)

    def _work(self, data) -> int:
        """Size of a job (T * K^2): small jobs run on one thread unless n_threads is set."""
        return int(data["offsets"][-1]) * self.n_components ** 2

    def _loglik(self, data):
        fp, off = self._frames(data)
        return _k.forward_loglik(self.startprob_, self.transmat_, fp, off, data["offsets"])

    def score_samples(self, X, lengths=None) -> tuple[float, NDArray]:
        """Log-likelihood and state posteriors.

        Returns
        -------
        logprob : float
        posteriors : array of shape (n_samples, n_states)
        """
        self._check_params()
        data = self._prepare(X, lengths)
        with numba_threads(self.n_threads, self._work(data)):
            fp, off = self._frames(data)
            logprob, gamma = _k.posteriors(self.startprob_, self.transmat_, fp, off, data["offsets"])
        _refuse_undefined(logprob, "state posteriors are")
        _refuse_lost_posteriors(gamma, data["offsets"])
        return float(logprob.sum()), gamma

    def predict_proba(self, X, lengths=None) -> NDArray:
        """State posteriors, array of shape (n_samples, n_states)."""
        return self.score_samples(X, lengths)[1]

    def decode(self, X, lengths=None, algorithm: str = "viterbi") -> tuple[float, NDArray]:
        """Most likely states.

        Parameters
        ----------
        algorithm : {"viterbi", "map"}
            ``"viterbi"``: the single best state path; ``logprob`` is its joint
            log-probability with ``X``.  Between exactly equally likely paths
            (common when states are tied) ties go to lower state indices, but
            which of the tied paths is returned can depend on the other
            sequences in ``X`` (see :func:`hmmtie._kernels.hmm.viterbi`).
            ``"map"``: the state with the highest
            posterior at every step; ``logprob`` is the sum over steps of the
            log posterior of the chosen state (the path may be impossible).

        Returns
        -------
        logprob : float
        states : array of shape (n_samples,)
        """
        check_choice("algorithm", algorithm, ("viterbi", "map"))
        if algorithm == "map":
            _, gamma = self.score_samples(X, lengths)
            states = np.argmax(gamma, axis=1)
            with np.errstate(divide="ignore"):
                logprob = float(np.log(gamma[np.arange(len(states)), states]).sum())
            return logprob, states
        self._check_params()
        data = self._prepare(X, lengths)
        with numba_threads(self.n_threads, self._work(data)):
            logprob, path = self._viterbi(data)
        _refuse_undefined(logprob, "best state path is")
        return float(logprob.sum()), path

    def _viterbi(self, data):
        fp, off = self._frames(data)
        log_fp = _log(fp) + off[:, None]
        return _k.viterbi(_log(self.startprob_), _log(self.transmat_), log_fp, data["offsets"])

    def predict(self, X, lengths=None) -> NDArray:
        """Viterbi state path, array of shape (n_samples,)."""
        return self.decode(X, lengths)[1]

    # ----------------------------------------------------------- statistics
    @property
    def n_free_parameters(self) -> int:
        """Number of free parameters, counted from the tie maps.

        Atoms minus one constraint per independent row, minus fixed cells,
        for the parameter blocks named in ``params`` (blocks not estimated
        are not counted).
        """
        t = self.tie_
        n = 0
        if "s" in self.params:
            n += t.start.n_free
        if "t" in self.params:
            n += t.trans.n_free
        n += self._n_free_emission()
        return n

    def aic(self, X, lengths=None) -> float:
        """Akaike information criterion ``-2 log L + 2 k`` (k = n_free_parameters)."""
        return -2 * self.score(X, lengths) + 2 * self.n_free_parameters

    def bic(self, X, lengths=None) -> float:
        """Bayesian information criterion ``-2 log L + k log n``.

        ``n`` is the number of observations: symbols (categorical) or frames
        (Gaussian), summed over all sequences.
        """
        data = self._prepare(X, lengths)
        return -2 * self.score(X, lengths) + self.n_free_parameters * math.log(data["offsets"][-1])

    # ------------------------------------------------------------------ fit
    def fit(self, X, lengths=None, callback=None, client=None):
        """Estimate parameters by EM (Baum–Welch) under the tie spec.

        The M-step is exact for every tie spec (:class:`hmmtie.tying.ProbBlock`;
        within about 1e-14 of the counts' total where they span more than
        15 orders of magnitude, see the README), so the objective never
        decreases.  ``history_`` records the
        objective at each iteration (the log-likelihood, plus the log-prior
        when Dirichlet priors or soft ties are used) evaluated at the
        parameters *before* that iteration's M-step; ``converged_`` is True
        when an iteration improved the objective by less than ``tol``, False
        when ``n_iter`` ran out first.

        Parameters
        ----------
        X : array of shape (n_samples, n_features) or list of sequences
        lengths : array of int, optional
        callback : callable, optional
            Called as ``callback(iteration, objective)`` after each E-step
            (progress reporting).
        client : dask.distributed.Client, optional
            Run the E-step on the cluster's workers, over partitions of
            about :data:`hmmtie.distributed.OBS_PER_PARTITION` observations
            (the M-step runs here).  Without a client the same partitions
            are summed in the same order, so the results are identical.

        Returns
        -------
        self
        """
        from . import distributed as _dist

        _dist.check_client(client)
        n_iter = check_int("n_iter", self.n_iter, low=0)
        tol = check_number("tol", self.tol)
        if "min_covar" in self._extra_settings:
            check_number("min_covar", self.min_covar)
        data = self._prepare(X, lengths, fitting=True)
        tie = self._compile()
        rng = check_random_state("random_state", self.random_state)
        self._init_params(data, tie, rng)
        atoms = self._atoms_from_params(tie)
        self._log_prior(tie, atoms)  # checks the priors before any E-step
        self.history_ = []
        self.converged_ = False
        parts = _dist._Partitions(_dist.hmm_partitions(data), client)
        n_threads = _dist.worker_threads(self.n_threads, client)
        with numba_threads(self.n_threads), _dist.releasing(parts):
            for it in range(n_iter):
                logprob, stats = _dist.hmm_estep(parts, self, n_threads)
                if not np.all(np.isfinite(logprob)):
                    bad = int(np.flatnonzero(~np.isfinite(logprob))[0])
                    raise ValueError(
                        f"sequence {bad + 1} (1-based) has probability 0 under the current parameters "
                        "(a fixed zero forbids it); cannot fit"
                    )
                objective = float(logprob.sum()) + self._log_prior(tie, atoms)
                self.history_.append(objective)
                if self.verbose:
                    print(f"iteration {it}: objective {objective:.6f}")
                if callback is not None:
                    callback(it, objective)
                if it > 0 and objective - self.history_[-2] < tol:
                    self.converged_ = True
                    break
                atoms = self._mstep(tie, stats, atoms)
                self._params_from_atoms(tie, atoms)
        self.n_iter_ = len(self.history_)
        return self

    def _init_params(self, data, tie, rng):
        ip = self.init_params
        if "s" in ip:
            self.startprob_ = tie.start.expand(tie.start.random_atoms(rng))[0]
        if "t" in ip:
            self.transmat_ = tie.trans.expand(tie.trans.random_atoms(rng))
        self._init_emission(data, tie, rng, "e" in ip)
        self._check_params()

    def _atoms_from_params(self, tie):
        return {
            "start": tie.start.atoms_from_full(self.startprob_[None, :], "startprob_"),
            "trans": tie.trans.atoms_from_full(self.transmat_, "transmat_"),
            **self._emission_atoms(tie),
        }

    def _mstep(self, tie, stats, atoms):
        new = dict(atoms)
        k = self.n_components
        if "s" in self.params:
            prior = _check_prior("startprob_prior", self.startprob_prior, (k,)) - 1
            new["start"] = tie.start.mstep(stats["start"][None, :] + prior[None, :], atoms["start"])
        if "t" in self.params:
            prior = _check_prior("transmat_prior", self.transmat_prior, (k, k)) - 1
            new["trans"] = tie.trans.mstep(stats["trans"] + prior, atoms["trans"])
        if set(self.params) & set("emc"):
            new.update(self._mstep_emission(tie, stats, atoms))
        return new

    def _params_from_atoms(self, tie, atoms):
        self.startprob_ = tie.start.expand(atoms["start"])[0]
        self.transmat_ = tie.trans.expand(atoms["trans"])
        self._emission_from_atoms(tie, atoms)

    def _log_prior(self, tie, atoms) -> float:
        lp = 0.0
        for name, value, block, key in (
            ("startprob_prior", self.startprob_prior, tie.start, "start"),
            ("transmat_prior", self.transmat_prior, tie.trans, "trans"),
        ):
            shape = block.tie.shape
            # the prior is over the free cells (as the M-step's pseudocounts):
            # a fixed zero contributes nothing (its log would be -inf)
            prior = np.where(block.tie != _tying.FIXED, _check_prior(name, value, shape) - 1, 0.0)
            if np.any(prior > 0):
                full = block.expand(atoms[key])
                with np.errstate(divide="ignore", invalid="ignore"):
                    lp += float(np.sum(np.where(prior > 0, prior * np.log(full), 0.0)))
        return lp + self._log_prior_emission(tie, atoms)

    # -------------------------------------------------------------- sample
    def sample(self, n_samples: int = 1, random_state=None) -> tuple[NDArray, NDArray]:
        """Draw one sequence from the model.

        Returns
        -------
        X : array of shape (n_samples, n_features)
        Z : array of shape (n_samples,) of state indices
        """
        n = check_int("n_samples", n_samples, low=1)
        self._check_params()
        rng = check_random_state("random_state", self.random_state if random_state is None else random_state)
        k = self.n_components
        z = np.empty(n, dtype=np.int64)
        cum_t = np.cumsum(self.transmat_, axis=1)
        z[0] = min(np.searchsorted(np.cumsum(self.startprob_), rng.random(), side="right"), k - 1)
        u = rng.random(n)
        for t in range(1, n):
            z[t] = min(np.searchsorted(cum_t[z[t - 1]], u[t], side="right"), k - 1)
        return self._sample_emissions(z, rng), z

    # ---------------------------------------------------------------- save
    def to_dict(self) -> dict:
        """Settings, state names, tie spec and parameters as plain JSON-able values."""
        self._check_fitted()
        settings = {k: v for k, v in self.get_params().items() if k not in ("states", "tying", "n_states")}
        for k, v in settings.items():
            if isinstance(v, np.ndarray):
                settings[k] = v.tolist()
        if not isinstance(settings.get("random_state"), (int, type(None))):
            settings["random_state"] = None
        params = {name.rstrip("_"): np.asarray(getattr(self, name)).tolist() for name in self._param_names()}
        out = {
            "model": type(self).__name__,
            "states": self._state_names(),
            "tying": self.tying or {},
            "settings": settings,
            "params": params,
        }
        if getattr(self, "history_", None) is not None:
            out["fit"] = {"history": list(self.history_), "converged": bool(self.converged_)}
        return out

    @classmethod
    def from_dict(cls, d: dict):
        """Rebuild a model from :meth:`to_dict` output."""
        model = cls(states=d["states"], tying=d.get("tying") or None, **d.get("settings", {}))
        for name in model._param_names():
            key = name.rstrip("_")
            if key not in d["params"]:
                raise ValueError(f"model file: parameter {key!r} is missing")
            setattr(model, name, np.asarray(d["params"][key], dtype=float))
        fit = d.get("fit")
        if fit:
            history = fit.get("history", []) if isinstance(fit, dict) else None
            if not isinstance(history, list) or not all(
                    isinstance(h, (int, float)) and not isinstance(h, bool) for h in history):
                raise ValueError("model file: \"fit\" must be {\"history\": [numbers], \"converged\": true|false}")
            model.history_ = [float(h) for h in history]
            converged = fit.get("converged", False)
            if not isinstance(converged, bool):
                raise ValueError(f"model file: fit converged must be true or false, got {converged!r}")
            model.converged_ = converged
        model._check_params()
        model._atoms_from_params(model.tie_)  # the values must respect the ties
        return model

    def save(self, path) -> None:
        """Write the model (settings, tie spec, parameters) as versioned JSON."""
        from .modelio import save_model

        save_model(self, path)

    def __repr__(self):
        shown = {k: v for k, v in self.get_params().items() if v is not None}
        args = ", ".join(f"{k}={v!r}" for k, v in shown.items() if k not in ("states",) or len(str(v)) < 60)
        return f"{type(self).__name__}({args})"


class CategoricalHMM(_BaseHMM):
    """HMM with categorical (discrete-symbol) emissions and tied parameters.

    Parameters
    ----------
    n_states : int, optional
        Number of states (named ``"0"``, ``"1"``, ...); or give ``states``.
    states : list of str, optional
        State names, used by the tie spec.
    n_symbols : int, optional
        Alphabet size; symbols are integers in ``[0, n_symbols)``.  Inferred
        from the data at the first ``fit`` (max symbol + 1) if not given.
    tying : dict, optional
        The tie spec; see :func:`hmmtie.tying.compile_hmm_spec`.  Validated
        when the model is built.
    n_iter : int, default 100
        Maximum EM iterations.
    tol : float, default 1e-4
        Stop when an iteration improves the objective by less than ``tol``.
    params, init_params : str, default "ste"
        Which parameters EM updates / ``fit`` initialises: ``s`` start,
        ``t`` transitions, ``e`` emissions (hmmlearn convention).  A
        parameter left out of ``init_params`` must be set by the user first.
    random_state : int or numpy Generator, optional
    startprob_prior, transmat_prior, emissionprob_prior : float or array
        Dirichlet concentrations (>= 1; ``alpha - 1`` is added to the
        expected counts of free cells before the exact M-step).
    n_threads : int, optional
        Numba threads for the kernels (default: numba's setting).
    verbose : bool

    Attributes
    ----------
    startprob_ : array of shape (n_states,)
    transmat_ : array of shape (n_states, n_states)
    emissionprob_ : array of shape (n_states, n_symbols)
    history_ : list of float
    converged_ : bool
    """

    _family = "categorical"
    _extra_settings = ("n_symbols", "emissionprob_prior")

    @classmethod
    def _extra_defaults(cls):
        return {"n_symbols": None, "emissionprob_prior": 1.0}

    def _emission_size_known(self):
        if self.n_symbols is not None:
            check_int("n_symbols", self.n_symbols, low=1)
            return True
        return False

    def _compile_kwargs(self):
        return {"n_symbols": int(self.n_symbols)}

    def _param_names(self):
        return ("startprob_", "transmat_", "emissionprob_")

    def _check_emission_params(self):
        if self.n_symbols is None:
            self.n_symbols = np.shape(self.emissionprob_)[-1]
        self.emissionprob_ = check_prob_array(
            "emissionprob_", self.emissionprob_, (self.n_components, int(self.n_symbols))
        )

    def _prepare(self, X, lengths, fitting=False):
        X, offsets = split_input(X, lengths, ndim_item=1)
        if fitting and self.n_symbols is None:
            X = check_symbols(X, None)
            self.n_symbols = int(X.max()) + 1
            self._compiled = None
        return {"symbols": check_symbols(X, self.n_symbols), "offsets": offsets}

    def _frames(self, data):
        fp = np.ascontiguousarray(self.emissionprob_.T[data["symbols"]])
        return fp, np.zeros(len(fp))

    def _loglik(self, data):
        return _k.forward_loglik_categorical(
            self.startprob_, self.transmat_, self.emissionprob_, data["symbols"], data["offsets"]
        )

    def _viterbi(self, data):
        return _k.viterbi_categorical(
            _log(self.startprob_), _log(self.transmat_), _log(self.emissionprob_),
            data["symbols"], data["offsets"],
        )

    def _estep(self, data):
        logprob, n_start, n_trans, n_emit = _k.expected_counts_categorical(
            self.startprob_, self.transmat_, self.emissionprob_, data["symbols"], data["offsets"]
        )
        return logprob, {"start": n_start, "trans": n_trans, "emit": n_emit}

    def _n_free_emission(self):
        if "e" not in self.params:
            return 0
        # A soft group keeps separate rows; its common centre is not a parameter of the likelihood.
        return self.tie_.emission.n_free

    def _init_emission(self, data, tie, rng, init):
        if init:
            self.emissionprob_ = tie.emission.expand(tie.emission.random_atoms(rng))
        self._soft_centres = {}

    def _emission_atoms(self, tie):
        atoms = tie.emission.atoms_from_full(self.emissionprob_, "emissionprob_")
        centres = {}
        for g in tie.soft_groups():
            centres[g.name] = _geometric_centre(self.emissionprob_[g.states])
        return {"emit": atoms, "centres": centres}

    def _mstep_emission(self, tie, stats, atoms):
        m = int(self.n_symbols)
        prior = _check_prior("emissionprob_prior", self.emissionprob_prior, (self.n_components, m)) - 1
        counts = stats["emit"] + prior
        centres = dict(atoms["centres"])
        for g in tie.soft_groups():
            centres[g.name] = _soft_centre(tie.emission, counts, g, centres[g.name], atoms["emit"])
        soft_counts = counts.copy()
        for g in tie.soft_groups():
            soft_counts[g.states] += g.soft * centres[g.name][None, :]
        emit = tie.emission.mstep(soft_counts, atoms["emit"])
        return {"emit": emit, "centres": centres}

    def _emission_from_atoms(self, tie, atoms):
        self.emissionprob_ = tie.emission.expand(atoms["emit"])

    def _log_prior_emission(self, tie, atoms):
        lp = 0.0
        prior = np.where(tie.emission.tie != _tying.FIXED, _check_prior(
            "emissionprob_prior", self.emissionprob_prior, (self.n_components, int(self.n_symbols))
        ) - 1, 0.0)
        full = tie.emission.expand(atoms["emit"])
        if np.any(prior > 0):
            with np.errstate(divide="ignore", invalid="ignore"):
                lp += float(np.sum(np.where(prior > 0, prior * np.log(full), 0.0)))
        for g in tie.soft_groups():
            q = atoms["centres"][g.name]
            for s in g.states:
                lp -= g.soft * _kl(q, full[s])
        return lp

    def _sample_emissions(self, z, rng):
        cum = np.cumsum(self.emissionprob_, axis=1)
        u = rng.random(len(z))
        x = np.array([np.searchsorted(cum[s], ui, side="right") for s, ui in zip(z, u)], dtype=np.int64)
        return np.minimum(x, self.emissionprob_.shape[1] - 1)[:, None]


def _soft_centre(block, counts, group, q0, old_atoms):
    """Exact joint M-step of a soft group's centre ``q`` (categorical).

    Maximises ``J(q) = max_p [sum n log p + lam sum_k (q log p_k - q log q)]``;
    for fixed ``q`` the rows ``p_k`` have the closed form of the M-step with
    pseudocounts ``lam q``, and by the envelope theorem
    ``dJ/dq_j = lam sum_k (log p_kj - log q_j - 1)``.  L-BFGS over softmax
    logits from the current centre never lowers ``J``, so EM stays monotone.
    """
    lam = group.soft
    if lam == 0:
        return q0
    from scipy.optimize import minimize

    support = q0 > 0
    members = group.states
    # Fast path: member rows free of fixed cells and of ties to other rows
    # have the closed form p_k = (n_k + lam q) / (N_k + lam).
    sub = block.tie[members]
    exclusive = not np.any(sub == -1) and all(
        np.isin(block.tie[np.setdiff1d(np.arange(block.tie.shape[0]), [r])], block.tie[r]).sum() == 0
        for r in members
    ) and all(np.unique(block.tie[r]).size == block.tie.shape[1] for r in members)

    def rows_for(q):
        if exclusive:
            nk = counts[members]
            return (nk + lam * q[None, :]) / (nk.sum(axis=1, keepdims=True) + lam)
        c = counts.copy()
        c[members] += lam * q[None, :]
        return block.expand(block.mstep(c, old_atoms))[members]

    def negJ(z):
        q = np.zeros_like(q0)
        e = np.exp(z - z.max())
        q[support] = e / e.sum()
        p = rows_for(q)
        with np.errstate(divide="ignore", invalid="ignore"):
            logp = np.where(p > 0, np.log(p), 0.0)
            logq = np.where(q > 0, np.log(q), 0.0)
        val = float((counts[members] * logp).sum() + lam * (q[None, :] * (logp - logq[None, :])).sum())
        g_q = lam * (logp - logq[None, :] - 1.0).sum(axis=0)[support]
        qs = q[support]
        grad_z = qs * (g_q - (qs * g_q).sum())
        return -val, -grad_z

    z0 = np.log(q0[support])
    res = minimize(negJ, z0, jac=True, method="L-BFGS-B", options={"maxiter": 500, "gtol": 1e-12, "ftol": 1e-15})
    z = res.x if res.fun <= negJ(z0)[0] else z0
    q = np.zeros_like(q0)
    e = np.exp(z - z.max())
    q[support] = e / e.sum()
    return q


def _geometric_centre(rows: NDArray) -> NDArray:
    """Normalised geometric mean of probability rows (the soft-tie centre)."""
    with np.errstate(divide="ignore"):
        lg = np.log(rows).mean(axis=0)
    if np.all(np.isneginf(lg)):
        return np.full(rows.shape[1], 1.0 / rows.shape[1])
    lg = lg - lg[np.isfinite(lg)].max()
    q = np.exp(lg)
    return q / q.sum()


def _kl(q: NDArray, p: NDArray) -> float:
    """KL(q || p) with 0 log 0 = 0."""
    mask = q > 0
    with np.errstate(divide="ignore"):
        return float(np.sum(q[mask] * (np.log(q[mask]) - np.log(p[mask]))))


class GaussianHMM(_BaseHMM):
    """HMM with diagonal-covariance Gaussian emissions and tied parameters.

    Emission groups may share a whole distribution (``share="all"``), only
    the means (``"means"``) or only the variances (``"covars"``).  When means
    are shared by states whose variances differ, the mean update is
    precision-weighted and the M-step is conditional (means given the
    current variances, then variances given the new means: ECM), which
    still never lowers the likelihood.

    Parameters
    ----------
    n_states, states, tying, n_iter, tol, params, init_params, random_state,
    startprob_prior, transmat_prior, n_threads, verbose
        As in :class:`CategoricalHMM`; ``params`` letters: ``s``, ``t``,
        ``m`` (means), ``c`` (covars).
    n_features : int, optional
        Frame dimension; inferred at the first ``fit``.
    min_covar : float, default 1e-3
        Floor on variances (applied only where the M-step would go below it).

    Attributes
    ----------
    means_ : array of shape (n_states, n_features)
    covars_ : array of shape (n_states, n_features)
        Diagonal variances (the only covariance type).  hmmlearn's
        ``covars_`` returns full (n_states, n_features, n_features)
        matrices even for ``covariance_type="diag"``; the same matrices
        here are ``np.stack([np.diag(v) for v in covars_])``.
    """

    _family = "gaussian"
    _param_letters = "stmc"
    _extra_settings = ("n_features", "min_covar")

    def __init__(self, n_states=None, *, params="stmc", init_params="stmc", **kwargs):
        super().__init__(n_states, params=params, init_params=init_params, **kwargs)

    @classmethod
    def _extra_defaults(cls):
        return {"n_features": None, "min_covar": 1e-3}

    def _emission_size_known(self):
        return True

    def _param_names(self):
        return ("startprob_", "transmat_", "means_", "covars_")

    def _check_emission_params(self):
        means = np.asarray(self.means_, dtype=float)
        covars = np.asarray(self.covars_, dtype=float)
        k = self.n_components
        if means.ndim != 2 or means.shape[0] != k:
            raise ValueError(f"means_ must have shape (n_states={k}, n_features), got {means.shape}")
        if self.n_features is None:
            self.n_features = means.shape[1]
        d = int(self.n_features)
        if means.shape != (k, d):
            raise ValueError(f"means_ has shape {means.shape}, expected {(k, d)}")
        if covars.shape != (k, d):
            raise ValueError(f"covars_ has shape {covars.shape}, expected {(k, d)} (diagonal variances)")
        if not np.all(np.isfinite(means)):
            raise ValueError("means_ holds NaN or inf")
        if not np.all(np.isfinite(covars)) or np.any(covars <= 0):
            raise ValueError(f"covars_ must be finite and > 0, got min {np.min(covars):.6g}")
        self.means_, self.covars_ = means, covars

    def _prepare(self, X, lengths, fitting=False):
        X, offsets = split_input(X, lengths, ndim_item=2)
        X = check_features(X, self.n_features)
        if fitting and self.n_features is None:
            self.n_features = X.shape[1]
        return {"X": X, "offsets": offsets}

    def _log_frameprob(self, X):
        var = self.covars_
        lf = -0.5 * (
            X.shape[1] * _LOG_2PI
            + np.log(var).sum(axis=1)[None, :]
            + ((X[:, None, :] - self.means_[None, :, :]) ** 2 / var[None, :, :]).sum(axis=2)
        )
        return lf

    def _frames(self, data):
        lf = self._log_frameprob(data["X"])
        off = lf.max(axis=1)
        return np.ascontiguousarray(np.exp(lf - off[:, None])), np.ascontiguousarray(off)

    def _viterbi(self, data):
        lf = np.ascontiguousarray(self._log_frameprob(data["X"]))
        return _k.viterbi(_log(self.startprob_), _log(self.transmat_), lf, data["offsets"])

    def _estep(self, data):
        fp, off = self._frames(data)
        logprob, n_start, n_trans, gamma = _k.expected_counts(
            self.startprob_, self.transmat_, fp, off, data["offsets"]
        )
        X = data["X"]
        return logprob, {
            "start": n_start,
            "trans": n_trans,
            "w": gamma.sum(axis=0),
            "s1": gamma.T @ X,
            "s2": gamma.T @ (X * X),
        }

    def _n_free_emission(self):
        t = self.tie_
        d = int(self.n_features) if self.n_features is not None else None
        if d is None:
            raise NotFittedError("GaussianHMM: n_features is unknown; call fit first")
        n = 0
        if "m" in self.params:
            n += t.n_means * d
        if "c" in self.params:
            n += t.n_covars * d
        return n

    def _init_emission(self, data, tie, rng, init):
        X = data["X"]
        d = X.shape[1]
        if "m" in self.init_params:
            self.means_ = _tying.expand(_kmeans(X, tie.n_means, rng), tie.means_tie)
        if "c" in self.init_params:
            # Within-cluster spread around the initial means (the global
            # variance would smear the first E-step across clusters).
            if len(X) > 1:
                sub = X if len(X) <= 20000 else X[rng.choice(len(X), size=20000, replace=False)]
                dist = ((sub[:, None, :] - self.means_[None, :, :]) ** 2).sum(axis=2)
                var = ((sub - self.means_[dist.argmin(axis=1)]) ** 2).mean(axis=0)
                var = np.maximum(var, self.min_covar)
            else:
                var = np.ones(d)
            self.covars_ = _tying.expand(np.tile(var, (tie.n_covars, 1)), tie.covars_tie)

    def _emission_atoms(self, tie):
        return {
            "means": _row_atoms(self.means_, tie.means_tie, "means_", self._state_names()),
            "covars": _row_atoms(self.covars_, tie.covars_tie, "covars_", self._state_names()),
            "centres": {g.name: self.means_[g.states].mean(axis=0) for g in tie.soft_groups()},
        }

    def _mstep_emission(self, tie, stats, atoms):
        w, s1, s2 = stats["w"], stats["s1"], stats["s2"]
        out = {}
        covars = _tying.expand(atoms["covars"], tie.covars_tie)
        means_atoms = atoms["means"]
        if "m" in self.params:
            prec = 1.0 / covars
            num = _tying.reduce(s1 * prec, tie.means_tie, tie.n_means)
            den = _tying.reduce(w[:, None] * prec, tie.means_tie, tie.n_means)
            means_atoms = np.where(den > 0, num / np.where(den > 0, den, 1.0), means_atoms)
            means = _tying.expand(means_atoms, tie.means_tie)
            centres = {}
            for g in tie.soft_groups():
                # Exact joint maximisation over the members' means and the centre m:
                # the objective is quadratic; with a_k = w_k / var_k and x_k the
                # weighted mean, m = sum c_k x_k / sum c_k, c_k = a_k lam / (a_k + lam).
                st = g.states
                a = w[st, None] * prec[st]
                with np.errstate(invalid="ignore", divide="ignore"):
                    xbar = np.where(a > 0, s1[st] * prec[st] / np.where(a > 0, a, 1.0), 0.0)
                if g.soft > 0:
                    c = a * g.soft / (a + g.soft)
                    m = np.where(c.sum(axis=0) > 0, (c * xbar).sum(axis=0) / np.maximum(c.sum(axis=0), 1e-300),
                                 atoms["centres"][g.name])
                else:
                    m = atoms["centres"][g.name]
                for k, s_ in enumerate(st):
                    means[s_] = (s1[s_] * prec[s_] + g.soft * m) / (w[s_] * prec[s_] + g.soft)
                centres[g.name] = m
            means_atoms = _row_atoms(means, tie.means_tie, "means_", None, check=False)
            out["centres"] = centres
        out["means"] = means_atoms
        means = _tying.expand(means_atoms, tie.means_tie)
        if "c" in self.params:
            sq = s2 - 2 * means * s1 + means**2 * w[:, None]
            num = _tying.reduce(np.maximum(sq, 0.0), tie.covars_tie, tie.n_covars)
            den = _tying.reduce(np.repeat(w[:, None], means.shape[1], axis=1), tie.covars_tie, tie.n_covars)
            cov = np.where(den > 0, num / np.where(den > 0, den, 1.0), atoms["covars"])
            out["covars"] = np.maximum(cov, self.min_covar)
        else:
            out["covars"] = atoms["covars"]
        return out

    def _emission_from_atoms(self, tie, atoms):
        self.means_ = _tying.expand(atoms["means"], tie.means_tie)
        self.covars_ = _tying.expand(atoms["covars"], tie.covars_tie)

    def _log_prior_emission(self, tie, atoms):
        lp = 0.0
        means = _tying.expand(atoms["means"], tie.means_tie)
        for g in tie.soft_groups():
            m = atoms["centres"][g.name]
            lp -= 0.5 * g.soft * float(((means[g.states] - m) ** 2).sum())
        return lp

    def _sample_emissions(self, z, rng):
        return self.means_[z] + rng.standard_normal((len(z), self.means_.shape[1])) * np.sqrt(self.covars_[z])


def _row_atoms(full, tie_rows, what, names, check=True):
    """Atoms of a row-tied array (n_states, d): one row per atom."""
    full = np.asarray(full, dtype=float)
    n_atoms = int(tie_rows.max()) + 1
    atoms = np.zeros((n_atoms, full.shape[1]))
    seen = np.full(n_atoms, -1)
    for s, a in enumerate(tie_rows):
        if seen[a] < 0:
            seen[a] = s
            atoms[a] = full[s]
        elif check and not np.allclose(atoms[a], full[s], rtol=0, atol=1e-10):
            raise ValueError(
                f"{what}: tied states {names[seen[a]]!r} and {names[s]!r} hold different values"
            )
    return atoms


def _kmeans(X: NDArray, k: int, rng: np.random.Generator, n_iter: int = 20, max_points: int = 20000) -> NDArray:
    """k-means++ seeding and a few Lloyd steps (the Gaussian mean initialisation).

    Works on a random subsample of at most ``max_points`` frames.
    """
    if len(X) > max_points:
        X = X[rng.choice(len(X), size=max_points, replace=False)]
    centres = np.empty((k, X.shape[1]))
    centres[0] = X[rng.integers(len(X))]
    d2 = ((X - centres[0]) ** 2).sum(axis=1)
    for c in range(1, k):
        total = d2.sum()
        idx = rng.choice(len(X), p=d2 / total) if total > 0 else rng.integers(len(X))
        centres[c] = X[idx]
        d2 = np.minimum(d2, ((X - centres[c]) ** 2).sum(axis=1))
    for _ in range(n_iter):
        dist = ((X[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        label = dist.argmin(axis=1)
        for c in range(k):
            members = X[label == c]
            if len(members):
                centres[c] = members.mean(axis=0)
    return centres
