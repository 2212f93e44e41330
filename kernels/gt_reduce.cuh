// Map-reduce over a broadcast, strided view collapsed to three groups of dimensions:
//
//     out[k1, k2] = sum over r of Map(op0[k1, r, k2], op1[k1, r, k2], op2[k1, r, k2])
//
// k1 and k2 are the kept (output) dimensions, r the reduced ones; the launcher
// (gputape/cuda/layout.py) merges any N-d problem whose dimensions fall into this pattern.
// Each operand is addressed through its own element strides (a, b, c) for (k1, r, k2); a
// broadcast operand has stride 0, so broadcast cotangents are never materialized.
//
// Two launch shapes, both with grid-stride loops and block-level reductions, no atomics:
//   * outer: one thread per output (k2 fastest, so loads coalesce along k2) when K2 > 1;
//   * inner: one block per output row when K2 == 1 (row sums and full sums), threads striding
//     over r, then a warp-shuffle tree.
// When there are few outputs and R is long, R is split into S chunks: each (output, chunk) pair
// writes an accumulator-typed partial, and finish() adds the S partials of each output in a
// fixed order (deterministic: the same inputs give the same bits).
#pragma once

#include "gt_math.cuh"

namespace gt {

typedef long long index_t;

struct Operand {
    const void* ptr;
    index_t a, b, c;
};

template <typename T>
__device__ __forceinline__ T load(const Operand& op, index_t k1, index_t r, index_t k2) {
    if (op.ptr == nullptr) return T(0);
    return static_cast<const T*>(op.ptr)[k1 * op.a + r * op.b + k2 * op.c];
}

template <typename A>
__device__ __forceinline__ A warp_sum(A v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
    return v;
}

// Sum of v over the block; the result is valid in thread 0. blockDim.x is a multiple of 32.
template <typename A>
__device__ A block_sum(A v, A* shared) {
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    v = warp_sum(v);
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    const int warps = blockDim.x >> 5;
    v = threadIdx.x < warps ? shared[threadIdx.x] : A(0);
    if (warp == 0) v = warp_sum(v);
    __syncthreads();  // shared is reused by the next row of the grid-stride loop
    return v;
}

template <typename T, typename A>
__device__ __forceinline__ void store(index_t S, index_t m, index_t s, index_t M, A value,
                                      T* out, A* partial) {
    if (S == 1)
        out[m] = static_cast<T>(value);
    else
        partial[s * M + m] = value;
}

template <typename T, typename A, class Map, int NOUT>
__device__ void reduce_outer(Operand o0, Operand o1, Operand o2, index_t K1, index_t R,
                             index_t K2, index_t S, T* out0, T* out1, A* part0, A* part1) {
    const index_t M = K1 * K2;
    const index_t chunk = (R + S - 1) / S;
    const index_t total = M * S;
    for (index_t t = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; t < total;
         t += static_cast<index_t>(gridDim.x) * blockDim.x) {
        const index_t m = t % M;
        const index_t s = t / M;
        const index_t k1 = m / K2;
        const index_t k2 = m % K2;
        const index_t r_end = min(R, (s + 1) * chunk);
        A acc0 = A(0), acc1 = A(0);
#pragma unroll 4
        for (index_t r = s * chunk; r < r_end; ++r)
            Map::apply(acc0, acc1, load<T>(o0, k1, r, k2), load<T>(o1, k1, r, k2),
                       load<T>(o2, k1, r, k2));
        store(S, m, s, M, acc0, out0, part0);
        if (NOUT == 2) store(S, m, s, M, acc1, out1, part1);
    }
}

template <typename T, typename A, class Map, int NOUT>
__device__ void reduce_inner(Operand o0, Operand o1, Operand o2, index_t K1, index_t R,
                             index_t S, T* out0, T* out1, A* part0, A* part1) {
    __shared__ A shared[32];
    const index_t chunk = (R + S - 1) / S;
    const index_t rows = K1 * S;
    for (index_t row = blockIdx.x; row < rows; row += gridDim.x) {
        const index_t k1 = row % K1;
        const index_t s = row / K1;
        const index_t r_end = min(R, (s + 1) * chunk);
        A acc0 = A(0), acc1 = A(0);
#pragma unroll 4
        for (index_t r = s * chunk + threadIdx.x; r < r_end; r += blockDim.x)
            Map::apply(acc0, acc1, load<T>(o0, k1, r, 0), load<T>(o1, k1, r, 0),
                       load<T>(o2, k1, r, 0));
        acc0 = block_sum(acc0, shared);
        if (NOUT == 2) acc1 = block_sum(acc1, shared);
        if (threadIdx.x == 0) {
            store(S, k1, s, K1, acc0, out0, part0);
            if (NOUT == 2) store(S, k1, s, K1, acc1, out1, part1);
        }
    }
}

// out[m] = sum over s of partial[s * M + m], s in order.
template <typename T, typename A>
__device__ void finish(const A* partial, index_t S, index_t M, T* out) {
    for (index_t m = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; m < M;
         m += static_cast<index_t>(gridDim.x) * blockDim.x) {
        A acc = A(0);
        for (index_t s = 0; s < S; ++s) acc += partial[s * M + m];
        out[m] = static_cast<T>(acc);
    }
}

// A full sum over n elements of x (contiguous) and y (y[i * y_step]: contiguous, or one value
// with y_step 0), writing each element's gradients for a cotangent c to g0 and g1 (either may be
// null) in the same pass. Block s sums the s-th of S chunks into part0[s] (and part1[s]); finish() adds the
// S partials in order, so the sum is deterministic.
template <typename T, typename A, class Map>
__device__ void sum_with_grads(const T* __restrict__ x, const T* __restrict__ y, index_t y_step,
                               T c, index_t n, index_t S, T* __restrict__ g0,
                               T* __restrict__ g1, A* part0, A* part1) {
    __shared__ A shared[32];
    // Chunks of whole blocks' widths, so every warp's loads start on the same alignment.
    const index_t width = blockDim.x;
    const index_t chunk = ((n + S - 1) / S + width - 1) / width * width;
    for (index_t s = blockIdx.x; s < S; s += gridDim.x) {
        const index_t end = min(n, (s + 1) * chunk);
        A acc0 = A(0), acc1 = A(0);
#pragma unroll 4
        for (index_t i = s * chunk + threadIdx.x; i < end; i += blockDim.x) {
            T w0 = T(0), w1 = T(0);
            Map::apply(acc0, acc1, x[i], y[i * y_step], c, w0, w1);
            if (g0 != nullptr) g0[i] = w0;
            if (g1 != nullptr) g1[i] = w1;
        }
        acc0 = block_sum(acc0, shared);
        acc1 = block_sum(acc1, shared);
        if (threadIdx.x == 0) {
            part0[s] = acc0;
            part1[s] = acc1;
        }
    }
}

}  // namespace gt

// One extern "C" entry point per (map, launch shape, dtype): the names the loader looks up.
#define GT_OPERANDS                                                                           \
    const void *p0, long long a0, long long b0, long long c0, const void *p1, long long a1,     \
        long long b1, long long c1, const void *p2, long long a2, long long b2, long long c2
#define GT_UNPACK                                                                              \
    gt::Operand o0 = {p0, a0, b0, c0}, o1 = {p1, a1, b1, c1}, o2 = {p2, a2, b2, c2}

#define GT_DEFINE_REDUCTION(NAME, MAP, NOUT, T, SUFFIX)                                         \
    extern "C" __global__ void gt_##NAME##_outer_##SUFFIX(                                     \
        GT_OPERANDS, long long K1, long long R, long long K2, long long S, T* out0, T* out1,    \
        double* part0, double* part1) {                                                        \
        GT_UNPACK;                                                                             \
        gt::reduce_outer<T, double, MAP, NOUT>(o0, o1, o2, K1, R, K2, S, out0, out1, part0,     \
                                               part1);                                         \
    }                                                                                          \
    extern "C" __global__ void gt_##NAME##_inner_##SUFFIX(                                     \
        GT_OPERANDS, long long K1, long long R, long long S, T* out0, T* out1, double* part0,   \
        double* part1) {                                                                       \
        GT_UNPACK;                                                                             \
        gt::reduce_inner<T, double, MAP, NOUT>(o0, o1, o2, K1, R, S, out0, out1, part0, part1); \
    }

#define GT_DEFINE_FINISH(T, SUFFIX)                                                            \
    extern "C" __global__ void gt_finish_##SUFFIX(const double* partial, long long S,          \
                                                  long long M, T* out) {                       \
        gt::finish<T, double>(partial, S, M, out);                                             \
    }

#define GT_DEFINE_ALL_DTYPES(NAME, MAP, NOUT)    \
    GT_DEFINE_REDUCTION(NAME, MAP, NOUT, float, f32) \
    GT_DEFINE_REDUCTION(NAME, MAP, NOUT, double, f64)

#define GT_DEFINE_SUM_GRADS(NAME, MAP, T, SUFFIX)                                              \
    extern "C" __global__ void gt_##NAME##_##SUFFIX(const T* x, const T* y, long long y_step,  \
                                                    T c, long long n, long long S, T* g0,      \
                                                    T* g1, double* part0, double* part1) {     \
        gt::sum_with_grads<T, double, MAP>(x, y, y_step, c, n, S, g0, g1, part0, part1);       \
    }

#define GT_DEFINE_SUM_GRADS_ALL_DTYPES(NAME, MAP) \
    GT_DEFINE_SUM_GRADS(NAME, MAP, float, f32)    \
    GT_DEFINE_SUM_GRADS(NAME, MAP, double, f64)
