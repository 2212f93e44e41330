// Gradients of pow: gx = sum_to(g * p * x**(p - 1)) and gp = sum_to(g * x**p * log x), the log
// masked to 0 where x <= 0 (TensorFlow's rule). Integer exponents take the repeated-squaring path
// of gt::power; the products keep the generic rule's order, so NaN/inf edges match it
// (x = 0, p = 0 gives 0 * inf = NaN in both).
#include "gt_reduce.cuh"

GT_DEFINE_ALL_DTYPES(pow_grad_x, gt::MapPowGradX, 1)
GT_DEFINE_ALL_DTYPES(pow_grad_p, gt::MapPowGradP, 1)
GT_DEFINE_FINISH(float, f32)
GT_DEFINE_FINISH(double, f64)
