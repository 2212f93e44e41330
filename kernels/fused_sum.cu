// Forward of reduction patterns the tape sees: reduce_sum(x * y), reduce_sum(x ** p) and
// reduce_sum(square(x)) read their inputs once and never store the elementwise intermediate.
#include "gt_reduce.cuh"

GT_DEFINE_ALL_DTYPES(sum_product, gt::MapMul, 1)
GT_DEFINE_ALL_DTYPES(sum_power, gt::MapPow, 1)
GT_DEFINE_ALL_DTYPES(sum_square, gt::MapSquare, 1)
GT_DEFINE_FINISH(float, f32)
GT_DEFINE_FINISH(double, f64)
