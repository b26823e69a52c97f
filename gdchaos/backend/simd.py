"""Explicit SIMD for the sparse first layer: a row of 64 accumulators held in vector registers.

Numba (LLVM) does not keep an array of accumulators in registers across a loop whose trip count
it does not know: it reloads and stores them on every term. :func:`accumulate_rows` is written
directly in LLVM IR with 8 vectors of 8 numbers (``<8 x double>``: 16 registers of 4 on AVX2
machines; float32 arrays use ``<8 x float>``), so a term of a sparse product costs one broadcast and 8 fused multiply-adds with a
memory operand. Arrays it reads are best aligned to 64 bytes (:func:`aligned_empty`): a 64-byte
load that crosses a cache line costs two (docs/performance.md).
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

LANES = 8  # doubles per vector
VECTORS = 8  # vectors per row of accumulators
TILE = LANES * VECTORS  # columns one call of accumulate_rows handles
ALIGN = 64  # bytes: a cache line, and one vector of 8 doubles


@intrinsic
def address(typingctx, array):
    """The address of an array's first element, as an int64."""
    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        return builder.ptrtoint(data, ir.IntType(64))
    return types.int64(array), codegen


@intrinsic
def accumulate_rows(typingctx, indices, values, p0, p1, w, stride, col, out, accumulate):
    """out[0:64] = (out[0:64] if accumulate else 0) + sum_{p0 <= p < p1} values[p] W[indices[p], col:col+64],

    where row j of W starts at element j * ``stride`` of the contiguous float64 array ``w`` (any
    number of dimensions). One fused multiply-add per term and column, terms in order of p: the
    same bits whatever the caller's tiling. Bounds are not checked: the caller guarantees valid
    indices, ``col + 64 <= stride`` for the rows read, and a contiguous ``out`` of at least 64.
    """
    signature = types.void(indices, values, p0, p1, w, stride, col, out, accumulate)

    def codegen(context, builder, sig, args):
        a_indices, a_values, a_p0, a_p1, a_w, a_stride, a_col, a_out, a_accumulate = args
        index_data = context.make_array(sig.args[0])(context, builder, a_indices).data
        value_data = context.make_array(sig.args[1])(context, builder, a_values).data
        w_array = context.make_array(sig.args[4])(context, builder, a_w)
        out_data = context.make_array(sig.args[7])(context, builder, a_out).data
        i64 = ir.IntType(64)
        element = context.get_data_type(sig.args[4].dtype)
        vector = ir.VectorType(element, LANES)
        vector_ptr = vector.as_pointer()
        suffix = "f64" if isinstance(element, ir.DoubleType) else "f32"
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vector, [vector] * 3),
                                             f"llvm.fma.v{LANES}{suffix}")
        n_columns = context.cast(builder, a_stride, sig.args[5], types.int64)
        start = context.cast(builder, a_p0, sig.args[2], types.int64)
        stop = context.cast(builder, a_p1, sig.args[3], types.int64)
        column = context.cast(builder, a_col, sig.args[6], types.int64)
        keep = context.cast(builder, a_accumulate, sig.args[8], types.boolean)

        def at(pointer, k):
            return builder.bitcast(builder.gep(pointer, [ir.Constant(i64, LANES * k)]), vector_ptr)

        zero = ir.Constant(vector, [0.0] * LANES)
        initial = [builder.select(keep, builder.load(at(out_data, k), align=8), zero) for k in range(VECTORS)]
        entry = builder.block
        head = builder.append_basic_block("rows.head")
        body = builder.append_basic_block("rows.body")
        done = builder.append_basic_block("rows.done")
        builder.branch(head)
        builder.position_at_end(head)
        p = builder.phi(i64)
        p.add_incoming(start, entry)
        sums = []
        for k in range(VECTORS):
            phi = builder.phi(vector)
            phi.add_incoming(initial[k], entry)
            sums.append(phi)
        builder.cbranch(builder.icmp_signed("<", p, stop), body, done)
        builder.position_at_end(body)
        j = builder.sext(builder.load(builder.gep(index_data, [p])), i64)
        value = context.cast(builder, builder.load(builder.gep(value_data, [p])), sig.args[1].dtype,
                             sig.args[4].dtype)
        lane0 = builder.insert_element(ir.Constant(vector, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
        spread = builder.shuffle_vector(lane0, ir.Constant(vector, ir.Undefined),
                                        ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES))
        row = builder.gep(w_array.data, [builder.add(builder.mul(j, n_columns), column)])
        updated = [builder.call(fma, [spread, builder.load(at(row, k), align=8), sums[k]])
                   for k in range(VECTORS)]
        following = builder.add(p, ir.Constant(i64, 1))
        builder.branch(head)
        p.add_incoming(following, body)
        for k in range(VECTORS):
            sums[k].add_incoming(updated[k], body)
        builder.position_at_end(done)
        for k in range(VECTORS):
            builder.store(sums[k], at(out_data, k), align=8)
        return context.get_dummy_value()

    return signature, codegen


@njit(inline="always")
def aligned_zeros(size, like):
    """A 1-d array of ``size`` zeros of the dtype of ``like`` whose first element is 64-byte
    aligned (inside kernels)."""
    buffer = np.zeros(size + ALIGN // like.itemsize, dtype=like.dtype)
    offset = ((-address(buffer)) % ALIGN) // like.itemsize
    return buffer[offset:offset + size]


def aligned_empty(shape: tuple[int, ...], dtype=np.float64) -> np.ndarray:
    """An uninitialised C-contiguous array whose first element is 64-byte aligned."""
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buffer = np.empty(size + ALIGN, dtype=np.uint8)
    offset = (-buffer.ctypes.data) % ALIGN
    return buffer[offset:offset + size].view(dtype).reshape(shape)


def padded(columns: int) -> int:
    """``columns`` rounded up to whole tiles of :data:`TILE`."""
    return -(-columns // TILE) * TILE
