"""Flush subnormal numbers to zero while the pair kernels run (x86).

In scaled probability space the cells far from the alignment path decay
below the smallest normal double (2.2e-308 of their row's scale) and become
subnormal.  This CPU takes a slow path for arithmetic on subnormals: on
the benchmark pairs they cost the forward 15-20%.  Setting the FTZ
(flush-to-zero) and DAZ (denormals-are-zero) bits of MXCSR for the span of
a kernel call makes them 0 instead.  What that drops is below 2.2e-308 of a
row's scale, where a subnormal keeps only a few bits of precision anyway,
so a likelihood it could change is already at the edge of the float range.

MXCSR is per thread: :func:`flush_subnormals` sets it on the calling
thread and restores the previous value on exit (the pair kernels' chunk
workers enter it on their own threads).  inf and NaN are unaffected.  On
other processors this is a no-op.
"""
import contextlib
import platform

_FTZ_DAZ = 0x8040
ENABLED = platform.machine().lower() in ("x86_64", "amd64")

if ENABLED:
    import numba
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
        _ldmxcsr(value)


@contextlib.contextmanager
def flush_subnormals():
    """Within the block, the calling thread flushes subnormal results and
    inputs to zero (x86; elsewhere nothing changes)."""
    if not ENABLED:
        yield
        return
    old = get_csr()
    set_csr(old | _FTZ_DAZ)
    try:
        yield
    finally:
        set_csr(old)
