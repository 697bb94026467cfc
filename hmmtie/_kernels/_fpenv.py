"""Flush subnormal results to zero while the scaled pair kernels run (x86).

In scaled probability space the cells far from the alignment path decay
below the smallest normal double (2.2e-308 of their row's scale) on their
way to 0.  Many x86 processors take a microcode assist for each arithmetic
result that is subnormal: 60-80x the cost of a normal multiply on the
Intel Xeon (Cascade Lake) of the eleventh session's machine, where it made
the striped forward 3-5x slower on ordinary pairs; 15-20% on AMD EPYC.
Setting the FTZ (flush-to-zero) bit of MXCSR for the span of a kernel call
makes such results 0 instead.

What that drops lies more than ~708 nats below its row's scale (instead of
~745): the scaled kernels are built to that bound (``_LOSS_FLOOR`` and
``_column_bound`` in :mod:`pair_fb`: a pair short enough to run unchecked
cannot lose 708 nats), and the other results are checked (the forward
against its reversed pass, posteriors and counts by their sums) and
recomputed with a tilt, or in log space, when they lost mass.  DAZ
(subnormal *inputs* read as 0) is not set: it stays as the thread had it
(off unless the caller set it).  A model parameter below 2.2e-308 is read
as itself, but its products with factors below 1 are flushed, so within
the scaled kernels it acts as 0 (a pair that then has no path goes to log
space).  The kernels' own intermediate values are never subnormal under
FTZ.  The log-space kernels (:mod:`pair_log`) run outside the block.

MXCSR is per thread: :func:`flush_subnormals` sets FTZ on the calling
thread and restores the previous MXCSR on exit, also when the block
raises (the batch kernels' workers enter it on their own threads).  inf
and NaN are unaffected.  On other processors, and with numba's JIT
disabled (``NUMBA_DISABLE_JIT=1``: the intrinsics cannot run as Python),
it does nothing.
"""
import contextlib
import platform

import numba

_FTZ = 0x8000
ENABLED = (platform.machine().lower() in ("x86_64", "amd64")
           and not numba.config.DISABLE_JIT)

if ENABLED:
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    def _csr_call(builder, name, ptr):
        fnty = ir.FunctionType(ir.VoidType(), [ir.PointerType(ir.IntType(8))])
        fn = cgutils.get_or_insert_function(builder.module, fnty, name)
        builder.call(fn, [builder.bitcast(ptr, ir.PointerType(ir.IntType(8)))])

    @intrinsic
    def _stmxcsr(typingctx):
        def codegen(context, builder, signature, args):
            ptr = cgutils.alloca_once(builder, ir.IntType(32))
            _csr_call(builder, "llvm.x86.sse.stmxcsr", ptr)
            return builder.load(ptr)
        return types.uint32(), codegen

    @intrinsic
    def _ldmxcsr(typingctx, value):
        def codegen(context, builder, signature, args):
            ptr = cgutils.alloca_once_value(builder, args[0])
            _csr_call(builder, "llvm.x86.sse.ldmxcsr", ptr)
            return context.get_dummy_value()
        return types.void(types.uint32), codegen

    @numba.njit(cache=True)
    def get_csr():
        """The calling thread's MXCSR."""
        return _stmxcsr()

    @numba.njit(cache=True)
    def set_csr(value):
        """Sets the calling thread's MXCSR."""
        _ldmxcsr(numba.uint32(value))

    @numba.njit(cache=True)
    def _flush_on():
        """Sets FTZ on the calling thread; returns the MXCSR it replaced
        (one call into compiled code instead of two)."""
        old = _stmxcsr()
        _ldmxcsr(old | numba.uint32(_FTZ))
        return old


@contextlib.contextmanager
def flush_subnormals():
    """Within the block, the calling thread flushes subnormal results to
    zero (x86; elsewhere nothing changes)."""
    if not ENABLED:
        yield
        return
    old = _flush_on()
    try:
        yield
    finally:
        set_csr(old)
