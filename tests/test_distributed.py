"""Scale-out: streaming input, Dask E-steps and batch alignment.

A real LocalCluster (2 single-threaded worker processes, loopback only) is
started once for the module.  Every Dask result is compared with the
in-process result, which must be identical (the E-step partitions do not
depend on the cluster and are summed in the same order).  The worker-kill
test runs last: it leaves the cluster with a restarted worker.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from hmmtie import CategoricalHMM, PairHMM, seqio
from hmmtie import distributed as dist

distributed = pytest.importorskip("distributed")

LETTERS = np.array(list("ACGT"))


def _pairs(n, length, seed=0):
    """Related DNA pairs: y is x with substitutions and a few indels."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = rng.choice(LETTERS, length)
        y = x.copy()
        sub = rng.random(length) < 0.15
        y[sub] = rng.choice(LETTERS, int(sub.sum()))
        keep = rng.random(length) > 0.04
        y = y[keep]
        out.append(("".join(x), "".join(y)))
    return out


@pytest.fixture(scope="module")
def client():
    import logging

    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture
def small_partitions(monkeypatch):
    """Several partitions even for small test inputs."""
    monkeypatch.setattr(dist, "PAIRS_PER_PARTITION", 7)
    monkeypatch.setattr(dist, "OBS_PER_PARTITION", 300)


def _same_pair_models(m1, m2):
    assert np.max(np.abs(np.array(m1.history_) - np.array(m2.history_))) <= 1e-10
    assert m1.history_ == m2.history_  # in fact bit for bit
    for name in ("trans_", "match_emissionprob_", "insert_emissionprob_"):
        np.testing.assert_array_equal(getattr(m1, name), getattr(m2, name))


# ---------------------------------------------------------------- partitions
def test_partition_bounds_cover_in_order():
    assert dist.partition_bounds(0, 5) == []
    b = dist.partition_bounds(23, 7)
    assert b[0][0] == 0 and b[-1][1] == 23 and all(p[1] == q[0] for p, q in zip(b, b[1:]))
    assert max(s1 - s0 for s0, s1 in b) <= 7
    off = np.array([0, 5, 9, 30, 31, 40])
    sb = dist.sequence_partition_bounds(off, 10)
    assert sb[0][0] == 0 and sb[-1][1] == 5 and all(p[1] == q[0] for p, q in zip(sb, sb[1:]))


def test_one_partition_is_the_old_single_batch_path():
    """Input within one partition: exactly the single kernel call."""
    from hmmtie._kernels import pair_fb as _kf

    m = PairHMM.preset("3state", alphabet="dna")
    pairs = _pairs(5, 40)
    (xs, xo), (ys, yo) = m._encode_pairs(pairs)
    ref = _kf.batch_expected_counts(*m._kargs(), xs, xo, ys, yo, -1)
    parts = dist._Partitions(dist.pair_partitions(xs, xo, ys, yo), None)
    got = dist.pair_estep(parts, m._kargs(), -1, None)
    for a, b in zip(ref, got):
        np.testing.assert_array_equal(a, b)


def test_partitioned_estep_matches_single_batch_closely(small_partitions):
    """Partitioned sums differ from one batch only by rounding."""
    from hmmtie._kernels import pair_fb as _kf

    m = PairHMM.preset("3state", alphabet="dna")
    pairs = _pairs(30, 40, seed=3)
    (xs, xo), (ys, yo) = m._encode_pairs(pairs)
    ref = _kf.batch_expected_counts(*m._kargs(), xs, xo, ys, yo, -1)
    parts = dist._Partitions(dist.pair_partitions(xs, xo, ys, yo), None)
    assert len(parts.parts) == 5
    got = dist.pair_estep(parts, m._kargs(), -1, None)
    np.testing.assert_array_equal(ref[0], got[0])  # per-pair log-odds: same bits
    for a, b in zip(ref[1:], got[1:]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- Dask = in process
def test_pair_fit_identical_on_dask(client, small_partitions):
    pairs = _pairs(40, 50, seed=1)
    m1 = PairHMM.preset("3state", alphabet="dna").fit(pairs, n_iter=3, emission_pseudocount=1.0)
    m2 = PairHMM.preset("3state", alphabet="dna").fit(pairs, n_iter=3, emission_pseudocount=1.0, client=client)
    _same_pair_models(m1, m2)
    assert m1.loglik_ == m2.loglik_ and m1.n_obs_ == m2.n_obs_


def test_categorical_hmm_fit_identical_on_dask(client, small_partitions):
    rng = np.random.default_rng(4)
    seqs = [rng.integers(0, 3, size=int(rng.integers(20, 60))) for _ in range(40)]

    def model():
        return CategoricalHMM(n_states=2, n_iter=5, tol=0.0, random_state=7)

    m1 = model().fit(seqs)
    m2 = model().fit(seqs, client=client)
    assert m1.history_ == m2.history_
    np.testing.assert_array_equal(m1.emissionprob_, m2.emissionprob_)
    np.testing.assert_array_equal(m1.transmat_, m2.transmat_)


@pytest.mark.parametrize("method", ["mea", "viterbi"])
def test_align_many_identical_on_dask_and_in_order(client, method):
    m = PairHMM.preset("3state", alphabet="dna")
    pairs = _pairs(23, 40, seed=2)
    ref = [m.align(a, b, method=method) for a, b in pairs]
    local = list(m.align_many(iter(pairs), method=method, chunk_size=4))
    remote = list(m.align_many(iter(pairs), method=method, client=client, chunk_size=4))
    assert len(local) == len(remote) == len(pairs)
    for r, a1, a2, (x, y) in zip(ref, local, remote, pairs):
        for a in (a1, a2):
            np.testing.assert_array_equal(a.coordinates, r.coordinates)
            assert a.score == r.score
            assert str(a.sequences[0].seq) == x
        assert a1.log_odds == a2.log_odds == m.log_odds(x, y)
        assert a1.log_likelihood == a2.log_likelihood == m.score(x, y)


def test_align_many_bad_pair_names_it_after_yielding_the_earlier_ones(client):
    m = PairHMM.preset("3state", alphabet="dna")
    pairs = _pairs(10, 20) + [("ACGT", "")] + _pairs(3, 20)
    for c in (None, client):
        got = []
        with pytest.raises(ValueError, match=r"^pair 11: .*empty"):
            for aln in m.align_many(pairs, chunk_size=4, client=c):
                got.append(aln)
        assert len(got) == 10


# ---------------------------------------------------------------- errors
def test_missing_dask_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"^Dask is not installed: pip install 'hmmtie\[dask\]'$"):
        dist.require_dask()
    with pytest.raises(ImportError, match="hmmtie\\[dask\\]"):
        dist.connect("local")


def test_not_a_client_is_rejected():
    m = PairHMM.preset("3state", alphabet="dna")
    with pytest.raises(ValueError, match="dask.distributed.Client"):
        m.fit(_pairs(2, 10), n_iter=1, client="tcp://127.0.0.1:8786")


def test_unreachable_scheduler_fails_fast():
    t = time.time()
    with pytest.raises(ValueError, match=r"cannot reach the Dask scheduler at tcp://127.0.0.1:9 within 2 s"):
        dist.connect("127.0.0.1:9", timeout=2)
    assert time.time() - t < 20


# ---------------------------------------------------------------- streaming input
def _write(path, records):
    path.write_text("".join(f">{rid}\n{seq}\n" for rid, seq in records))
    return path


def test_iter_pairs_follows_the_pairing_rules(tmp_path):
    a = _write(tmp_path / "a.fa", [("a1", "ACGT"), ("a2", "ACGA"), ("a3", "AAGT")])
    b = _write(tmp_path / "b.fa", [("b1", "ACG"), ("b2", "AGGA"), ("b3", "TTGT")])
    one = _write(tmp_path / "one.fa", [("q", "ACGTT")])
    ids = lambda s: [(x.id, y.id) for x, y in s]  # noqa: E731
    assert ids(seqio.iter_pairs(a, b)) == [("a1", "b1"), ("a2", "b2"), ("a3", "b3")]
    assert ids(seqio.iter_pairs(one, b)) == [("q", "b1"), ("q", "b2"), ("q", "b3")]
    assert ids(seqio.iter_pairs(a, one)) == [("a1", "q"), ("a2", "q"), ("a3", "q")]
    assert len(ids(seqio.iter_pairs(a, b, all_vs_all=True))) == 9
    s = seqio.iter_pairs(a, b)
    assert s.alphabet == "dna"
    same = seqio.pair_records(seqio.read_fasta(a), seqio.read_fasta(b))
    assert ids(same) == ids(seqio.iter_pairs(a, b))


def test_iter_pairs_bad_record_deep_in_the_stream(tmp_path):
    recs = [(f"r{k}", "ACGT") for k in range(1, 2001)]
    a = _write(tmp_path / "a.fa", recs)
    bad = list(recs)
    bad[1499] = ("r1500", "ACGJ")
    b = _write(tmp_path / "b.fa", bad)
    s = seqio.iter_pairs(a, b, guess_records=100)
    seen = 0
    with pytest.raises(seqio.StreamError) as info:
        for _ in s:
            seen += 1
    assert seen == 1499 and info.value.pairs_done == 1499 and info.value.record == 1500
    assert "record 1500" in str(info.value) and "'J'" in str(info.value) and "b.fa" in str(info.value)
    short = _write(tmp_path / "short.fa", recs[:1200])
    with pytest.raises(seqio.StreamError, match="has 1200 records but"):
        list(seqio.iter_pairs(a, short))


@pytest.mark.slow
def test_streamed_alignment_memory_is_bounded(tmp_path):
    """50,000 short pairs streamed from FASTA through align_many: peak RSS
    grows < 30 MiB, i.e. less than ~630 bytes a pair (the bound 100,000
    pairs and 60 MiB set before, at half the time; 8.6 MiB measured)."""
    n = 50_000
    rng = np.random.default_rng(5)
    lens = rng.integers(15, 30, size=n)
    with open(tmp_path / "a.fa", "w") as fa, open(tmp_path / "b.fa", "w") as fb:
        for k in range(n):
            x = "".join(rng.choice(LETTERS, lens[k]))
            fa.write(f">a{k} some description\n{x}\n")
            fb.write(f">b{k}\n{x[1:]}A\n")
    script = textwrap.dedent(f"""
        import resource, sys
        from hmmtie import PairHMM, seqio
        m = PairHMM.preset("3state", alphabet="dna")
        list(m.align_many([("ACGTACGT", "ACGACGT")] * 300, chunk_size=256))  # compile, warm up
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        stream = seqio.iter_pairs({str(tmp_path / 'a.fa')!r}, {str(tmp_path / 'b.fa')!r})
        n = cols = 0
        for aln in m.align_many(stream, chunk_size=256):
            n += 1
            cols += aln.shape[1]
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(n, before, after)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    n_done, before, after = map(int, out.stdout.split())
    assert n_done == n
    growth_mib = (after - before) / 1024  # ru_maxrss is in KiB on Linux
    assert growth_mib < 30, f"peak RSS grew by {growth_mib:.1f} MiB while streaming {n} pairs"


# ---------------------------------------------------------------- command line
def _invoke(*args):
    from click.testing import CliRunner

    from hmmtie.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)


def test_cli_scheduler_address_gives_the_same_output(client, tmp_path):
    pairs = _pairs(9, 30, seed=11)
    a = _write(tmp_path / "a.fa", [(f"a{k}", x) for k, (x, _) in enumerate(pairs)])
    b = _write(tmp_path / "b.fa", [(f"b{k}", y) for k, (_, y) in enumerate(pairs)])
    address = client.scheduler.address
    for fmt in ("text", "json", "stockholm"):
        local = _invoke("align", a, b, "-f", fmt, "-q", "--chunk-size", "2")
        remote = _invoke("align", a, b, "-f", fmt, "-q", "--chunk-size", "2", "--scheduler", address)
        assert local.exit_code == remote.exit_code == 0, remote.output
        assert local.stdout == remote.stdout
    t1, t2 = tmp_path / "t1.json", tmp_path / "t2.json"
    r1 = _invoke("train", a, b, "-o", t1, "--params", "transitions", "--n-iter", "2", "-q")
    r2 = _invoke("train", a, b, "-o", t2, "--params", "transitions", "--n-iter", "2", "-q", "--scheduler", address)
    assert r1.exit_code == r2.exit_code == 0, r2.output
    assert t1.read_text() == t2.read_text()


def test_cli_hmm_fit_and_compare_on_the_scheduler(client, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(dist, "OBS_PER_PARTITION", 300)  # rolls.txt: 5 x 200 rolls -> 5 partitions
    monkeypatch.setattr(dist, "PAIRS_PER_PARTITION", 3)
    examples = os.path.join(os.path.dirname(__file__), "..", "data", "examples")
    for name in ("casino_spec.json", "rolls.txt"):
        shutil.copy(os.path.join(examples, name), tmp_path / name)
    address = client.scheduler.address
    out = [tmp_path / "m1.json", tmp_path / "m2.json"]
    for path, extra in zip(out, ([], ["--scheduler", address])):
        r = _invoke("hmm", "fit", tmp_path / "casino_spec.json", tmp_path / "rolls.txt", "-o", path,
                    "--n-iter", "5", "-q", *extra)
        assert r.exit_code == 0, r.output
    assert out[0].read_text() == out[1].read_text()
    pairs = _pairs(8, 30, seed=12)
    a = _write(tmp_path / "a.fa", [(f"a{k}", x) for k, (x, _) in enumerate(pairs)])
    b = _write(tmp_path / "b.fa", [(f"b{k}", y) for k, (_, y) in enumerate(pairs)])
    r1 = _invoke("compare", a, b, "--n-iter", "2", "--json")
    r2 = _invoke("compare", a, b, "--n-iter", "2", "--json", "--scheduler", address)
    assert r1.exit_code == r2.exit_code == 0, r2.output
    assert r1.stdout == r2.stdout


@pytest.mark.slow
def test_cli_scheduler_local_starts_and_stops_a_cluster(tmp_path):
    pairs = _pairs(5, 30, seed=13)
    a = _write(tmp_path / "a.fa", [(f"a{k}", x) for k, (x, _) in enumerate(pairs)])
    b = _write(tmp_path / "b.fa", [(f"b{k}", y) for k, (_, y) in enumerate(pairs)])
    local = _invoke("align", a, b, "-f", "json", "-q")
    cluster = _invoke("align", a, b, "-f", "json", "-q", "--scheduler", "local")
    assert local.exit_code == cluster.exit_code == 0, cluster.output
    assert local.stdout == cluster.stdout


def test_cli_unreachable_scheduler_is_one_line(tmp_path):
    a = _write(tmp_path / "a.fa", [("a1", "ACGTACGT")])
    b = _write(tmp_path / "b.fa", [("b1", "ACGACGT")])
    t = time.time()
    r = _invoke("align", a, b, "--scheduler", "127.0.0.1:9")
    assert r.exit_code == 2 and r.stdout == ""
    err = r.stderr.strip()
    assert err.count("\n") == 0 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err
    assert time.time() - t < 30


def test_cli_bad_record_deep_in_stream_keeps_the_pairs_before_it(tmp_path, monkeypatch):
    from hmmtie.cli import _pair

    monkeypatch.setattr(_pair, "EAGER_READ_BYTES", 0)  # stream even these small files
    recs = [(f"r{k}", "ACGTAC") for k in range(1, 1001)]
    a = _write(tmp_path / "a.fa", recs)
    bad = list(recs)
    bad[699] = ("r700", "")
    b = _write(tmp_path / "b.fa", bad)
    out = tmp_path / "out.fa"
    r = _invoke("align", a, b, "-f", "fasta", "-o", out, "-q", "--chunk-size", "64")
    assert r.exit_code == 2
    err = r.stderr.strip()
    assert err.count("\n") == 0
    assert "record 700" in err and "output stopped after pair 699" in err and "out.fa.partial" in err
    assert not out.exists()
    assert (tmp_path / "out.fa.partial").read_text().count(">") == 2 * 699
    r = _invoke("align", a, b, "-q", "--chunk-size", "64")  # stdout: the pairs are already out
    assert r.exit_code == 2 and r.stdout.count("# pair ") == 699
    assert "pairs 1-699 were written" in r.stderr
    # json: the partial document is still valid JSON, saying where and why it stopped
    out = tmp_path / "out.json"
    r = _invoke("align", a, b, "-f", "json", "-o", out, "-q", "--chunk-size", "64")
    assert r.exit_code == 2
    doc = json.loads((tmp_path / "out.json.partial").read_text())
    assert len(doc["pairs"]) == 699 and doc["error"].startswith("pair 700: stopped: ")
    assert "record 700" in doc["error"]


@pytest.mark.slow
def test_worker_deaths_beyond_the_retry_limit_are_one_clear_error(small_partitions):
    """With allowed-failures=0 a killed worker fails the job: one line naming the step."""
    import logging

    import dask

    pairs = _pairs(60, 150, seed=9)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                           dashboard_address="127.0.0.1:0", silence_logs=logging.CRITICAL)
        c = distributed.Client(cluster)
    try:
        pids = list(c.run(os.getpid).values())
        started = threading.Event()

        def killer():
            started.wait(120)
            time.sleep(0.3)
            for pid in pids:
                os.kill(pid, signal.SIGKILL)

        threading.Thread(target=killer, daemon=True).start()
        with pytest.raises(dist.DistributedError, match=r"^pair E-step: Dask workers died") as info:
            PairHMM.preset("3state", alphabet="dna").fit(
                pairs, n_iter=20, tol=0.0, client=c, callback=lambda it, obj: started.set())
        assert "\n" not in str(info.value)
    finally:
        c.close()
        cluster.close()


# ---------------------------------------------------------------- fault tolerance (last: restarts a worker)
def test_killed_worker_job_still_completes_identically(client, small_partitions):
    pairs = _pairs(60, 150, seed=9)
    ref = PairHMM.preset("3state", alphabet="dna").fit(pairs, n_iter=4, tol=0.0)
    pids = list(client.run(os.getpid).values())
    assert len(pids) == 2
    started = threading.Event()
    killed = []

    def killer():
        started.wait(120)
        time.sleep(0.3)  # the next E-step is now running on the workers
        os.kill(pids[0], signal.SIGKILL)
        killed.append(pids[0])

    th = threading.Thread(target=killer, daemon=True)
    th.start()
    m = PairHMM.preset("3state", alphabet="dna").fit(
        pairs, n_iter=4, tol=0.0, client=client, callback=lambda it, obj: started.set())
    th.join(10)
    assert killed == [pids[0]]
    _same_pair_models(ref, m)
    # the cluster replaced the worker, and alignment still matches
    client.wait_for_workers(2, timeout=60)
    alns = list(PairHMM.preset("3state", alphabet="dna").align_many(pairs[:12], client=client, chunk_size=3))
    m0 = PairHMM.preset("3state", alphabet="dna")
    for (x, y), a in zip(pairs[:12], alns):
        np.testing.assert_array_equal(a.coordinates, m0.align(x, y).coordinates)


@pytest.mark.parametrize("address, needle", [
    ("ucx://1.2.3.4:1", "protocol 'ucx' is not supported"),  # was an internal error, exit 1
    ("foo:bar", "bad Dask scheduler address 'foo:bar'"),
])
def test_cli_bad_scheduler_addresses_are_one_line(tmp_path, address, needle):
    a = _write(tmp_path / "a.fa", [("a1", "ACGTACGT")])
    r = _invoke("align", a, a, "--scheduler", address)
    assert r.exit_code == 2 and r.stdout == ""
    err = r.stderr.strip()
    assert err.count("\n") == 0 and needle in err
