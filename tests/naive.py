"""Brute-force and plain re-implementations used as test oracles.

HMM oracles are prefixed ``hmm_``. They favour obviousness over speed.
"""

import itertools
import math

import numba
import numpy as np


def hmm_enumerate(startprob, transmat, frameprob):
    """Enumerate every state path of one sequence.

    Returns (paths, probs): paths is an int array (K**T, T), probs the joint
    probability of each path with the observations (frameprob as likelihoods).
    """
    n_samples, n_states = frameprob.shape
    paths = np.array(list(itertools.product(range(n_states), repeat=n_samples)),
                     dtype=np.int64).reshape(-1, n_samples)
    probs = np.empty(len(paths))
    for r, path in enumerate(paths):
        p = startprob[path[0]] * frameprob[0, path[0]]
        for t in range(1, n_samples):
            p *= transmat[path[t - 1], path[t]] * frameprob[t, path[t]]
        probs[r] = p
    return paths, probs


def hmm_brute_force(startprob, transmat, frameprob):
    """Exact statistics of one sequence by enumerating every path.

    Returns a dict with logprob, gamma (T, K), n_start (K,), n_trans (K, K),
    viterbi_logprob, viterbi_paths (all optimal paths, ties included).
    """
    n_samples, n_states = frameprob.shape
    paths, probs = hmm_enumerate(startprob, transmat, frameprob)
    total = probs.sum()
    gamma = np.zeros((n_samples, n_states))
    n_trans = np.zeros((n_states, n_states))
    if total > 0:
        for path, p in zip(paths, probs):
            for t in range(n_samples):
                gamma[t, path[t]] += p / total
            for t in range(1, n_samples):
                n_trans[path[t - 1], path[t]] += p / total
    best = probs.max()
    with np.errstate(divide="ignore"):
        return {
            "logprob": np.log(total),
            "gamma": gamma,
            "n_start": gamma[0].copy(),
            "n_trans": n_trans,
            "viterbi_logprob": np.log(best),
            "viterbi_paths": paths[probs == best] if best > 0 else paths[:0],
            "path_logprob": np.log(probs),
            "paths": paths,
        }


@numba.njit(cache=True)
def hmm_forward_log(log_startprob, log_transmat, log_frameprob):
    """Log-space forward of one sequence (log-sum-exp at every cell).

    The running maximum is subtracted at every step and the shifts are summed
    with Neumaier compensation: a plain log-space recursion carries values of
    size |log-likelihood| and loses about eps * |logprob| per step, which over
    10**6 steps is far worse than the scaled algorithm under test.
    """
    n_samples, n_states = log_frameprob.shape
    prev = log_startprob + log_frameprob[0]
    cur = np.empty(n_states)
    terms = np.empty(n_states)
    total = 0.0
    comp = 0.0
    for t in range(n_samples):
        if t > 0:
            for j in range(n_states):
                m = -np.inf
                for i in range(n_states):
                    terms[i] = prev[i] + log_transmat[i, j]
                    if terms[i] > m:
                        m = terms[i]
                if m == -np.inf:
                    cur[j] = -np.inf
                else:
                    s = 0.0
                    for i in range(n_states):
                        s += math.exp(terms[i] - m)
                    cur[j] = m + math.log(s) + log_frameprob[t, j]
            prev, cur = cur, prev
        shift = prev.max()
        if shift == -np.inf:
            return -np.inf
        prev -= shift
        nxt = total + shift
        if abs(total) >= abs(shift):
            comp += (total - nxt) + shift
        else:
            comp += (shift - nxt) + total
        total = nxt
    return total + comp + math.log(np.exp(prev).sum())


@numba.njit(cache=True)
def hmm_forward_log_categorical(log_startprob, log_transmat, log_emissionprob,
                                symbols):
    """Log-space forward for categorical emissions, one sequence."""
    n_states = log_startprob.shape[0]
    log_frameprob = np.empty((symbols.shape[0], n_states))
    for t in range(symbols.shape[0]):
        for k in range(n_states):
            log_frameprob[t, k] = log_emissionprob[k, symbols[t]]
    return hmm_forward_log(log_startprob, log_transmat, log_frameprob)
