// Forward of reduction patterns the tape sees: reduce_sum(x * y), reduce_sum(x ** p) and
// reduce_sum(square(x)) read their inputs once and never store the elementwise intermediate.
#include "gt_reduce.cuh"

GT_DEFINE_ALL_DTYPES(sum_product, gt::MapMul, 1)
GT_DEFINE_ALL_DTYPES(sum_power, gt::MapPow, 1)
GT_DEFINE_ALL_DTYPES(sum_square, gt::MapSquare, 1)

// The same sums over every element, writing the inputs' gradients for a unit cotangent in the
// same pass (used while a tape records): each input is read once for forward and gradient.
GT_DEFINE_SUM_GRADS_ALL_DTYPES(sum_grad_mul, gt::SumGradMul)
GT_DEFINE_SUM_GRADS_ALL_DTYPES(sum_grad_square, gt::SumGradSquare)
GT_DEFINE_SUM_GRADS_ALL_DTYPES(sum_grad_pow, gt::SumGradPow)
GT_DEFINE_SUM_GRADS_ALL_DTYPES(sum_grad_pow_p, gt::SumGradPowP)
GT_DEFINE_FINISH(float, f32)
GT_DEFINE_FINISH(double, f64)
