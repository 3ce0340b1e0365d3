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

/// Copies `bytes` (0..16) bytes from global `src` to the 16 bytes at shared address `dst` and
/// zero-fills the rest; both addresses 16-byte aligned. kL1 keeps the line in L1 (data that other
/// warps of the block read too), otherwise it is cached in L2 only (streamed data).
template <bool kL1> __device__ __forceinline__ void copy16_async(unsigned dst, const void *src, int bytes) {
  if constexpr (kL1)
    asm volatile("cp.async.ca.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(bytes) : "memory");
  else
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(bytes) : "memory");
}
template <bool kL1> __device__ __forceinline__ void copy16_async(void *dst, const void *src, int bytes) {
  copy16_async<kL1>(shared_address(dst), src, bytes);
}

/// Copies `bytes` (0 or 4) bytes from global `src` to the 4 bytes at shared address `dst` and
/// zero-fills the rest; both addresses 4-byte aligned, cached in L1 (the only mode 4-byte copies
/// have). The data goes to shared memory without a register, so no register allocation can make
/// one copy wait for another.
__device__ __forceinline__ void copy4_async(unsigned dst, const void *src, int bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;" ::"r"(dst), "l"(src), "r"(bytes) : "memory");
}

/// Copies `bytes` (0 or 8) bytes from global `src` to the 8 bytes at shared address `dst` and
/// zero-fills the rest; both addresses 8-byte aligned, cached in L1 (as every copy of fewer
/// than 16 bytes).
__device__ __forceinline__ void copy8_async(unsigned dst, const void *src, int bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;" ::"r"(dst), "l"(src), "r"(bytes) : "memory");
}

/// The L2 policy of data read once (a stream): evict first, so that it does not push out what
/// other blocks will read again there. Made once per thread and passed to copy16_async_stream.
__device__ __forceinline__ unsigned long long stream_policy() {
  unsigned long long policy;
  asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
  return policy;
}

/// copy16_async (L2 only) under an L2 cache policy from stream_policy().
__device__ __forceinline__ void copy16_async_stream(unsigned dst, const void *src, int bytes, unsigned long long policy) {
  asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2, %3;" ::"r"(dst), "l"(src), "r"(bytes),
               "l"(policy)
               : "memory");
}

/// Closes the group of this thread's copies issued since the last commit.
__device__ __forceinline__ void commit_async() { asm volatile("cp.async.commit_group;" ::: "memory"); }

/// Waits until at most kPending of this thread's committed groups are still in flight.
template <int kPending> __device__ __forceinline__ void wait_async() {
  asm volatile("cp.async.wait_group %0;" ::"n"(kPending) : "memory");
}

} // namespace mhc
