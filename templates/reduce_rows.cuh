// mhcjit templates: out[c] = sum_r part[r][c] in a fixed order, the finish of every parameter
// gradient that blocks produce as partial rows (no floating-point atomics anywhere). Columns
// from args.split on go to out2, so one launch can finish two gradients stored side by side.
// Narrow, deep reductions (cols <= kReduceWarpColumns, rows >= kReduceWarpRows: dalpha, dbeta,
// dscale, ...) give each column a warp: lane l sums rows l, l + 32, ... in order, then a fixed
// butterfly. The others give each column a thread that sums its rows in order.
#pragma once

#include "mhc_common.cuh"

namespace mhc {

__device__ __forceinline__ float *destination(const ReduceRowsArgs &args, i64 c) {
  return c < args.split ? args.out + c : args.out2 + (c - args.split);
}

template <int kThreads>
__global__ void __launch_bounds__(kThreads) reduce_rows(const __grid_constant__ ReduceRowsArgs args) {
  wait_for_previous_grid(); // the partials come from the kernel launched before this one
  if (args.cols <= kReduceWarpColumns && args.rows >= kReduceWarpRows) {
    constexpr int kWarps = kThreads / 32;
    const int lane = threadIdx.x % 32;
    for (i64 c = i64(blockIdx.x) * kWarps + threadIdx.x / 32; c < args.cols; c += i64(gridDim.x) * kWarps) {
      float s = 0.0f;
      for (i64 r = lane; r < args.rows; r += 32)
        s += args.part[r * args.stride + c];
      s = warp_sum(s);
      if (lane == 0)
        *destination(args, c) = s;
    }
    return;
  }
  for (i64 c = i64(blockIdx.x) * kThreads + threadIdx.x; c < args.cols; c += i64(gridDim.x) * kThreads) {
    float s = 0.0f;
    for (i64 r = 0; r < args.rows; ++r)
      s += args.part[r * args.stride + c];
    *destination(args, c) = s;
  }
}

} // namespace mhc
