// Gradients of multiply: gx = sum_to(g * y), gy = sum_to(g * x). With both needed and x, y of
// one shape, one pass over g computes both (two accumulators); otherwise one output per launch.
// square(x) = x * x has its own one-output map: sum_to(g * (2 * x)).
#include "gt_reduce.cuh"

GT_DEFINE_ALL_DTYPES(mul, gt::MapMul, 1)
GT_DEFINE_ALL_DTYPES(mul_pair, gt::MapMulPair, 2)
GT_DEFINE_ALL_DTYPES(square_grad, gt::MapSquareGrad, 1)
GT_DEFINE_FINISH(float, f32)
GT_DEFINE_FINISH(double, f64)
