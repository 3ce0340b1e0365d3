// mhcjit templates: out[c] = sum_r part[r][c] in a fixed order, the finish of every parameter
// gradient that blocks produce as partial rows (no floating-point atomics anywhere). Columns
// from args.split on go to out2, so one launch can finish two gradients stored side by side.
// Narrow, deep reductions (cols <= kReduceBlockColumns, rows >= kReduceBlockRows: dalpha, dbeta,
// dscale, ...) give each column a block: thread t sums rows t, t + kThreads, ... in order, then
// the block's fixed-order sum. The others give each column a thread that sums its rows in order.
#pragma once

#include "mhc_common.cuh"

namespace mhc {

__device__ __forceinline__ float *destination(const ReduceRowsArgs &args, i64 c) {
  return c < args.split ? args.out + c : args.out2 + (c - args.split);
}

template <int kThreads>
__global__ void __launch_bounds__(kThreads) reduce_rows(const __grid_constant__ ReduceRowsArgs args) {
  wait_for_previous_grid(); // the partials come from the kernel launched before this one
  if (args.cols <= kReduceBlockColumns && args.rows >= kReduceBlockRows) {
    // a block a column: thread t adds rows t, t + kThreads, ... in order (at 512 rows two loads
    // a thread, in flight together), then block_sum_to_thread0's fixed order
    __shared__ float scratch[kThreads / 32];
    for (i64 c = blockIdx.x; c < args.cols; c += gridDim.x) {
      float s[1] = {0.0f};
      for (i64 r = threadIdx.x; r < args.rows; r += kThreads)
        s[0] += args.part[r * args.stride + c];
      block_sum_to_thread0<kThreads, 1>(s, scratch);
      if (threadIdx.x == 0)
        *destination(args, c) = s[0];
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
