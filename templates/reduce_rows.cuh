// mhcjit templates: out[c] = sum_r part[r][c] in row order, the fixed-order finish of every
// parameter gradient that blocks produce as partial rows (no floating-point atomics anywhere).
#pragma once

#include "mhc_common.cuh"

namespace mhc {

template <int kThreads>
__global__ void __launch_bounds__(kThreads) reduce_rows(const __grid_constant__ ReduceRowsArgs args) {
  for (i64 c = i64(blockIdx.x) * kThreads + threadIdx.x; c < args.cols; c += i64(gridDim.x) * kThreads) {
    float s = 0.0f;
    for (i64 r = 0; r < args.rows; ++r)
      s += args.part[r * args.stride + c];
    args.out[c] = s;
  }
}

} // namespace mhc
