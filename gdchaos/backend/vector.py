"""LANES float64 lanes as one Numba value (``<16 x double>``): explicit SIMD inside ordinary kernels.

LLVM vectorises loops over long rows by itself, but not code whose natural vector is short and
fixed: a block of samples carried through a whole small network, with its activations and
gradient sums in registers. :data:`float64_lanes` is a Numba type whose values are LLVM vectors; the
arithmetic operators, ``abs``, ``math.copysign`` and the functions below work on it lane by lane
(a float operand is broadcast), so the same source (e.g. :mod:`.vecmath`'s tanh) compiles for a
float and for a vector. Operations are the IEEE ones of the scalar code: a lane computes what the
scalar expression computes (the kernel's fast-math flags apply to both). On AVX2 machines LLVM
splits each vector into two of four.
"""
from __future__ import annotations

import math
import operator
import platform

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, overload, register_model

LANES = 16  # float64 lanes per vector (LLVM splits it into 2 zmm or 4 ymm registers)


class Float64Lanes(types.Type):
    """The Numba type of a vector of LANES float64."""

    def __init__(self):
        super().__init__(name=f"float64x{LANES}")


float64_lanes = Float64Lanes()
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_DOUBLE = ir.DoubleType()
_VECTOR = ir.VectorType(_DOUBLE, LANES)
_INTS = ir.VectorType(_I64, LANES)


@register_model(Float64Lanes)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VECTOR)


def _is_vector(value) -> bool:
    return isinstance(value, Float64Lanes)


def _is_number(value) -> bool:
    return isinstance(value, (types.Float, types.Integer, types.Boolean))


def _operands(*values) -> bool:
    """Whether a lane-wise operation applies: numbers and vectors, at least one vector."""
    return any(map(_is_vector, values)) and all(_is_vector(v) or _is_number(v) for v in values)


def _spread(context, builder, value, value_type):
    """A vector from an operand: a vector as is, a number cast to float64 and broadcast."""
    if _is_vector(value_type):
        return value
    scalar = context.cast(builder, value, value_type, types.float64)
    first = builder.insert_element(ir.Constant(_VECTOR, ir.Undefined), scalar, ir.Constant(_I32, 0))
    return builder.shuffle_vector(first, ir.Constant(_VECTOR, ir.Undefined),
                                  ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES))


def _llvm_call(builder, name: str, *args):
    """The LLVM intrinsic ``llvm.NAME`` of doubles or of vectors (by the type of the arguments)."""
    value_type = args[0].type
    suffix = f"v{LANES}f64" if value_type == _VECTOR else "f64"
    function = cgutils.get_or_insert_function(builder.module, ir.FunctionType(value_type, [value_type] * len(args)),
                                              f"llvm.{name}.{suffix}")
    return builder.call(function, list(args))


def _lanewise(build, scalars: bool = False):
    """An intrinsic of vectors and numbers (numbers broadcast) returning a vector; with ``scalars``,
    of numbers only it returns a float64 (the same operation on one lane)."""
    def typer(typingctx, *values):
        if scalars and all(map(_is_number, values)):
            def scalar_codegen(context, builder, signature, args):
                return build(builder, *[context.cast(builder, a, t, types.float64)
                                        for a, t in zip(args, signature.args)])
            return types.float64(*values), scalar_codegen
        if not _operands(*values):
            return None

        def codegen(context, builder, signature, args):
            spread = [_spread(context, builder, a, t) for a, t in zip(args, signature.args)]
            return build(builder, *spread)
        return float64_lanes(*values), codegen
    return typer


def _arithmetic(opcode: str):
    """The intrinsic of one binary IR instruction ('fadd', 'fsub', 'fmul', 'fdiv') lane by lane."""
    @intrinsic
    def operation(typingctx, a, b):
        return _lanewise(lambda builder, x, y: getattr(builder, opcode)(x, y))(typingctx, a, b)
    return operation


_add, _sub, _mul, _div = (_arithmetic(opcode) for opcode in ("fadd", "fsub", "fmul", "fdiv"))


@intrinsic
def _neg(typingctx, a):
    return _lanewise(lambda builder, x: builder.fneg(x))(typingctx, a)


@intrinsic
def _abs(typingctx, a):
    return _lanewise(lambda builder, x: _llvm_call(builder, "fabs", x))(typingctx, a)


@intrinsic
def _copysign(typingctx, magnitude, sign):
    return _lanewise(lambda builder, x, y: _llvm_call(builder, "copysign", x, y))(typingctx, magnitude, sign)


@intrinsic
def fma(typingctx, a, b, c):
    """a b + c with one rounding, lane by lane; also of three numbers."""
    return _lanewise(lambda builder, x, y, z: _llvm_call(builder, "fma", x, y, z), scalars=True)(typingctx, a, b, c)


@intrinsic
def where_less(typingctx, a, b, x, y):
    """x where a < b else y, lane by lane (a NaN compares false: y); also of four numbers."""
    return _lanewise(lambda builder, a_, b_, x_, y_: builder.select(builder.fcmp_ordered("<", a_, b_), x_, y_),
                     scalars=True)(typingctx, a, b, x, y)


@intrinsic
def where_equal(typingctx, a, b, x, y):
    """x where a == b else y, lane by lane; also of four numbers."""
    return _lanewise(lambda builder, a_, b_, x_, y_: builder.select(builder.fcmp_ordered("==", a_, b_), x_, y_),
                     scalars=True)(typingctx, a, b, x, y)


@intrinsic
def exponent_scale(typingctx, shifted):
    """2^k where the low bits of the float64 ``shifted`` hold the integer k (x + 1.5 2^52 rounds x to
    k there): (bits + 1023) << 52 reinterpreted. Scalars and vectors alike."""
    if _is_vector(shifted):
        value_type, int_type, result = _VECTOR, _INTS, float64_lanes
    elif isinstance(shifted, types.Float):
        value_type, int_type, result = _DOUBLE, _I64, types.float64
    else:
        return None

    def codegen(context, builder, signature, args):
        value = context.cast(builder, args[0], signature.args[0], result) if result is types.float64 else args[0]
        bits = builder.bitcast(value, int_type)
        one = ir.Constant(int_type, [1023] * LANES if int_type is _INTS else 1023)
        shift = ir.Constant(int_type, [52] * LANES if int_type is _INTS else 52)
        return builder.bitcast(builder.shl(builder.add(bits, one), shift), value_type)
    return result(shifted), codegen


@intrinsic
def splat(typingctx, value):
    """A vector with ``value`` in every lane."""
    if not _is_number(value):
        return None

    def codegen(context, builder, signature, args):
        return _spread(context, builder, args[0], signature.args[0])
    return float64_lanes(value), codegen


@intrinsic
def load(typingctx, array, start):
    """array.flat[start:start + LANES] of a C-contiguous float64 array (bounds not checked)."""
    if not (isinstance(array, types.Array) and array.dtype == types.float64 and isinstance(start, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        index = context.cast(builder, args[1], signature.args[1], types.int64)
        return builder.load(builder.bitcast(builder.gep(data, [index]), _VECTOR.as_pointer()), align=8)
    return float64_lanes(array, start), codegen


@intrinsic
def store(typingctx, array, start, value):
    """array.flat[start:start + LANES] = value (C-contiguous float64 array, bounds not checked)."""
    if not (isinstance(array, types.Array) and array.dtype == types.float64 and _is_vector(value)):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        index = context.cast(builder, args[1], signature.args[1], types.int64)
        builder.store(args[2], builder.bitcast(builder.gep(data, [index]), _VECTOR.as_pointer()), align=8)
        return context.get_dummy_value()
    return types.void(array, start, value), codegen


@intrinsic
def lane(typingctx, vector, k):
    """Lane ``k`` of a vector, a float64."""
    if not (_is_vector(vector) and isinstance(k, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        return builder.extract_element(args[0], context.cast(builder, args[1], signature.args[1], types.int32))
    return types.float64(vector, k), codegen


@intrinsic
def iota(typingctx):
    """The vector (0, 1, ..., LANES - 1)."""
    def codegen(context, builder, signature, args):
        return ir.Constant(_VECTOR, [float(k) for k in range(LANES)])
    return float64_lanes(), codegen


def _across_lanes(opcode: str):
    """The intrinsic combining a vector's lanes with one IR instruction ('fadd', 'fmul') in a fixed
    pairwise order: the upper half with the lower half, lane by lane, until one lane is left."""
    @intrinsic
    def reduction(typingctx, vector):
        if not _is_vector(vector):
            return None

        def codegen(context, builder, signature, args):
            value, width = args[0], LANES
            while width > 1:
                width //= 2
                low = builder.shuffle_vector(value, ir.Constant(value.type, ir.Undefined),
                                             ir.Constant(ir.VectorType(_I32, width), list(range(width))))
                high = builder.shuffle_vector(value, ir.Constant(value.type, ir.Undefined),
                                              ir.Constant(ir.VectorType(_I32, width), list(range(width, 2 * width))))
                value = getattr(builder, opcode)(low, high)
            return builder.extract_element(value, ir.Constant(_I32, 0))
        return types.float64(vector), codegen
    return reduction


total = _across_lanes("fadd")
total.__doc__ = """The sum of the lanes in a fixed pairwise order (for 8 lanes ((0+4) + (2+6)) + ((1+5) + (3+7)))."""
product = _across_lanes("fmul")
product.__doc__ = """The product of the lanes in the fixed pairwise order of :func:`total`."""


@intrinsic
def split_exponent(typingctx, vector):
    """(e, m) lane by lane with v = 2^e m, m in [1, 2), for positive normal lanes: the exponent bits
    less 1023 (as float64) and v with its exponent bits set to 1023 (exact). Other lanes give
    meaningless values (infinity and NaN: e = 1024)."""
    if not _is_vector(vector):
        return None

    def codegen(context, builder, signature, args):
        bits = builder.bitcast(args[0], _INTS)
        biased = builder.lshr(bits, ir.Constant(_INTS, [52] * LANES))
        exponent = builder.sitofp(builder.sub(biased, ir.Constant(_INTS, [1023] * LANES)), _VECTOR)
        fraction = builder.and_(bits, ir.Constant(_INTS, [(1 << 52) - 1] * LANES))
        mantissa = builder.or_(fraction, ir.Constant(_INTS, [1023 << 52] * LANES))
        return cgutils.make_anonymous_struct(builder, [exponent, builder.bitcast(mantissa, _VECTOR)])
    return types.UniTuple(float64_lanes, 2)(vector), codegen


def _binary(function):
    def select(a, b):
        if _operands(a, b):
            return lambda a, b: function(a, b)
    return select


overload(operator.add)(_binary(_add))
overload(operator.sub)(_binary(_sub))
overload(operator.mul)(_binary(_mul))
overload(operator.truediv)(_binary(_div))
overload(operator.iadd)(_binary(_add))
overload(operator.isub)(_binary(_sub))
overload(operator.imul)(_binary(_mul))
overload(operator.itruediv)(_binary(_div))
overload(math.copysign)(_binary(_copysign))


@overload(operator.neg)
def _negate(a):
    if _is_vector(a):
        return lambda a: _neg(a)


@overload(abs)
def _absolute(a):
    if _is_vector(a):
        return lambda a: _abs(a)


_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
FLUSH_BITS = (1 << 15) | (1 << 6)  # MXCSR: flush results and treat inputs below 2^-1022 as zero


@intrinsic
def flush_subnormals(typingctx):
    """Set this thread's x86 MXCSR to flush subnormal results and inputs to zero (FTZ, DAZ) and
    return its previous value, for :func:`restore_control`; elsewhere a no-op returning 0.

    A multiply or fused multiply-add with a subnormal operand or result takes a microcode assist
    (about a hundred cycles) on x86: diverging networks, whose softmax outputs fall to e^-708,
    then run several times slower. Values below 2.2e-308 change by less than 2.2e-308."""
    def codegen(context, builder, signature, args):
        if not _X86:
            return ir.Constant(_I32, 0)
        slot = cgutils.alloca_once(builder, _I32)
        pointer = builder.bitcast(slot, ir.IntType(8).as_pointer())
        builder.call(_void_function(builder, "llvm.x86.sse.stmxcsr"), [pointer])
        old = builder.load(slot)
        builder.store(builder.or_(old, ir.Constant(_I32, FLUSH_BITS)), slot)
        builder.call(_void_function(builder, "llvm.x86.sse.ldmxcsr"), [pointer])
        return old
    return types.int32(), codegen


@intrinsic
def restore_control(typingctx, old):
    """Set this thread's MXCSR back to ``old`` (from :func:`flush_subnormals`); elsewhere a no-op."""
    if not isinstance(old, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        if _X86:
            slot = cgutils.alloca_once(builder, _I32)
            builder.store(context.cast(builder, args[0], signature.args[0], types.int32), slot)
            builder.call(_void_function(builder, "llvm.x86.sse.ldmxcsr"),
                         [builder.bitcast(slot, ir.IntType(8).as_pointer())])
        return context.get_dummy_value()
    return types.void(old), codegen


def _void_function(builder, name: str):
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer()]),
                                          name)
