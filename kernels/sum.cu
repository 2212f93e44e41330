// reduce_sum / sum_to: the un-broadcast that ends almost every gradient. Its gradient, the
// broadcast of the cotangent, needs no kernel: it is a stride-0 view that the next fused kernel
// reads in place.
#include "gt_reduce.cuh"

GT_DEFINE_ALL_DTYPES(sum, gt::MapSum, 1)
GT_DEFINE_FINISH(float, f32)
GT_DEFINE_FINISH(double, f64)
