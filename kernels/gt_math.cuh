// Scalar math shared by the fused kernels: the element maps of every fused op.
//
// Each map folds one element of its operands (v0, v1, v2) into one or two accumulators. The
// products are formed in the tensor's type T, in the same order as the generic rule
// (gputape/ops/elementwise.py), each rounded to T (the loader compiles with --fmad=false, so
// no product is fused with the sum into an FMA), and only the sum is carried in the
// accumulator type. A fused result differs from the unfused one by summation order, and for
// small integer exponents by power()'s repeated multiplication (a few ulps from pow). On the
// GPU, float32 subnormals flush to zero here as in CuPy's own kernels: CuPy compiles every
// kernel with -ftz=true. Everything here is also host code, so the maps are checked against
// NumPy (subnormals kept) on a machine without a GPU.
#pragma once

namespace gt {

// x ** p with a fast path for small integer exponents (repeated squaring). The fast path keeps
// C's edge values: x**0 == 1 (NaN included), 0**-1 == inf, (-0)**-1 == -inf.
template <typename T>
__host__ __device__ __forceinline__ T power(T x, T p) {
    if (p == T(2)) return x * x;
    if (p == T(1)) return x;
    if (p >= T(-32) && p <= T(32) && p == rint(p)) {
        int n = static_cast<int>(p);
        bool invert = n < 0;
        unsigned int e = static_cast<unsigned int>(invert ? -n : n);
        T base = x;
        T result = T(1);
        while (e) {
            if (e & 1u) result *= base;
            base *= base;
            e >>= 1;
        }
        return invert ? T(1) / result : result;
    }
    return pow(x, p);
}

// log x where x > 0, else 0: TensorFlow's mask for d/dp x**p (NaN x gives 0 here; the
// product with x**p = NaN keeps the NaN, as in the generic rule).
template <typename T>
__host__ __device__ __forceinline__ T masked_log(T x) {
    return x > T(0) ? log(x) : T(0);
}

// The element maps. Operand order is the fused op's argument order.
struct MapSum {  // sum_to(x): x
    template <typename T, typename A>
    __host__ __device__ static void apply(A& a0, A&, T v0, T, T) {
        a0 += static_cast<A>(v0);
    }
};

struct MapMul {  // sum_to(g * y)
    template <typename T, typename A>
    __host__ __device__ static void apply(A& a0, A&, T g, T y, T) {
        a0 += static_cast<A>(g * y);
    }
};

struct MapMulPair {  // (sum_to(g * y), sum_to(g * x)) from operands (g, x, y), one read of g
    template <typename T, typename A>
    __host__ __device__ static void apply(A& a0, A& a1, T g, T x, T y) {
        a0 += static_cast<A>(g * y);
        a1 += static_cast<A>(g * x);
    }
};

struct MapSquareGrad {  // sum_to(g * (2 * x)): the gradient of square(x) = x * x
    template <typename T, typename A>
    __host__ __device__ static void apply(A& a0, A&, T g, T x, T) {
        a0 += static_cast<A>(g * (T(2) * x));
    }
};

struct MapPowGradX {  // sum_to(g * p * x**(p - 1)) from operands (g, x, p)
    template <typename T, typename A>
    __host__ __device__ static void apply(A& a0, A&, T g, T x, T p) {
        a0 += static_cast<A>((g * p) * power(x, p - T(1)));
    }
};

// sum_to(g * x**p * log x), the log masked to 0 where x <= 0; operands (g, x, p): x**p is
// recomputed rather than read, so a pending x**p is never stored.
struct MapPowGradP {
    template <typename T, typename A>
    __host__ __device__ static void apply(A& a0, A&, T g, T x, T p) {
        a0 += static_cast<A>((g * power(x, p)) * masked_log(x));
    }
};

struct MapPow {  // reduce_sum(x ** p): forward of the pattern, x ** p never stored
    template <typename T, typename A>
    __host__ __device__ static void apply(A& a0, A&, T x, T p, T) {
        a0 += static_cast<A>(power(x, p));
    }
};

struct MapSquare {  // reduce_sum(square(x))
    template <typename T, typename A>
    __host__ __device__ static void apply(A& a0, A&, T x, T, T) {
        a0 += static_cast<A>(x * x);
    }
};

// Forward and gradient in one pass: reduce_sum (or reduce_mean) of a pattern, with the gradients
// its inputs get for a cotangent that holds c everywhere (1 for the default seed of a scalar loss,
// 1/count under a mean). Each map adds the element's value to a0 (and, for the exponent of
// x ** p, d/dp to a1) and sets the element's gradients w0 (for x) and w1 (for y). They are the
// gradient maps above with g = c, in the same order, so they give the same bits.
struct SumGradMul {  // reduce_sum(x * y): d/dx = c y, d/dy = c x
    template <typename T, typename A>
    __host__ __device__ static void apply(A& a0, A&, T x, T y, T c, T& w0, T& w1) {
        a0 += static_cast<A>(x * y);
        w0 = c * y;
        w1 = c * x;
    }
};

struct SumGradSquare {  // reduce_sum(square(x)): d/dx = c (2 x)
    template <typename T, typename A>
    __host__ __device__ static void apply(A& a0, A&, T x, T, T c, T& w0, T&) {
        a0 += static_cast<A>(x * x);
        w0 = c * (T(2) * x);
    }
};

struct SumGradPow {  // reduce_sum(x ** p): d/dx = (c p) x**(p - 1)
    template <typename T, typename A>
    __host__ __device__ static void apply(A& a0, A&, T x, T p, T c, T& w0, T&) {
        a0 += static_cast<A>(power(x, p));
        w0 = (c * p) * power(x, p - T(1));
    }
};

struct SumGradPowP {  // the same, and d/dp of the sum for a 0-d p: the sum of (c x**p) log x
    template <typename T, typename A>
    __host__ __device__ static void apply(A& a0, A& a1, T x, T p, T c, T& w0, T&) {
        const T z = power(x, p);
        a0 += static_cast<A>(z);
        a1 += static_cast<A>((c * z) * masked_log(x));
        w0 = (c * p) * power(x, p - T(1));
    }
};

}  // namespace gt
