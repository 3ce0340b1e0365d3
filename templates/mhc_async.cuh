// mhcjit templates: asynchronous global-to-shared copies (cp.async, sm_80+), for kernels that keep
// several steps of their input in flight without holding it in registers.
#pragma once

#include "mhc_common.cuh"

namespace mhc {

/// The shared-memory address of a generic pointer into shared memory.
__device__ __forceinline__ unsigned shared_address(const void *p) {
  unsigned long long a;
  asm("cvta.to.shared.u64 %0, %1;" : "=l"(a) : "l"(p));
  return unsigned(a);
}

/// Copies `bytes` (0..16) bytes from global `src` to 16 bytes of shared `dst` and zero-fills the
/// rest; both addresses 16-byte aligned. kL1 keeps the line in L1 (data that other warps of the
/// block read too), otherwise it is cached in L2 only (streamed data).
template <bool kL1> __device__ __forceinline__ void copy16_async(void *dst, const void *src, int bytes) {
  if constexpr (kL1)
    asm volatile("cp.async.ca.shared.global [%0], [%1], 16, %2;" ::"r"(shared_address(dst)), "l"(src), "r"(bytes)
                 : "memory");
  else
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(shared_address(dst)), "l"(src), "r"(bytes)
                 : "memory");
}

/// copy16_async for data read once (a stream): marked evict-first in L2, so that it does not push
/// out what other blocks will read again there.
__device__ __forceinline__ void copy16_async_stream(void *dst, const void *src, int bytes) {
  asm volatile("{\n"
               "  .reg .b64 policy;\n"
               "  createpolicy.fractional.L2::evict_first.b64 policy, 1.0;\n"
               "  cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2, policy;\n"
               "}" ::"r"(shared_address(dst)),
               "l"(src), "r"(bytes)
               : "memory");
}

/// Closes the group of this thread's copies issued since the last commit.
__device__ __forceinline__ void commit_async() { asm volatile("cp.async.commit_group;" ::: "memory"); }

/// Waits until at most kPending of this thread's committed groups are still in flight.
template <int kPending> __device__ __forceinline__ void wait_async() {
  asm volatile("cp.async.wait_group %0;" ::"n"(kPending) : "memory");
}

} // namespace mhc
