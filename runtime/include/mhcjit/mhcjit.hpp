// mhcjit: the public C++ API. Each op direction is one call: a config, M, device pointers, a stream.
// Kernels are JIT-compiled for the current device on first use and cached (memory and disk).
#pragma once

#include "mhcjit/Contract.h"
#include "mhcjit/KernelSpec.h"

#include "llvm/ADT/Optional.h"
#include "llvm/Support/Error.h"

#include <cuda.h>
#include <cstdint>

namespace mhcjit {

/// What every op call is specialised on (the M-independent part of a kernel spec).
struct MixConfig {
  int N = 4;                      ///< streams, 1..8
  int64_t C = 0;                  ///< hidden size per stream, >= 1
  DType StreamType = DType::BF16; ///< dtype of x, f and the stream outputs
  ContractConstants Contract = contractPreset(ContractKind::TE);
  llvm::Optional<Layout> StreamLayout; ///< default: the contract's layout
  Precision Prec = Precision::FP32;    ///< projection products: exact fp32 or tf32

  Layout layout() const { return StreamLayout ? *StreamLayout : Contract.DefaultLayout; }
};

/// Inputs and outputs of aggregate forward: y[m][c] = sum_j pre[m][j] * x[m][j][c].
struct AggregateForwardArgs {
  int64_t M = 0;
  const void *X = nullptr;     ///< (M, n, C) stream dtype, in config.layout()
  const float *Pre = nullptr;  ///< (M, n)
  void *Y = nullptr;           ///< (M, C) stream dtype
};

/// Inputs and outputs of aggregate backward.
struct AggregateBackwardArgs {
  int64_t M = 0;
  const void *DY = nullptr;   ///< (M, C) stream dtype
  const void *X = nullptr;    ///< (M, n, C) stream dtype
  const float *Pre = nullptr; ///< (M, n)
  void *DX = nullptr;         ///< (M, n, C): written in the stream dtype, or added into (fp32)
  float *DPre = nullptr;      ///< (M, n), written
  bool AccumulateDx = false;  ///< true: DX is an fp32 buffer that dx is added into
};

/// Launches aggregate forward on Stream (0 = the legacy default stream) in the current context.
/// Errors (nothing is launched): a bad config, M < 1, null or misaligned pointers.
llvm::Error aggregateForward(const MixConfig &Config, const AggregateForwardArgs &Args, CUstream Stream);

/// Launches aggregate backward: dx = dy * pre[j] (written or accumulated), dpre = sum_c dy * x[j].
llvm::Error aggregateBackward(const MixConfig &Config, const AggregateBackwardArgs &Args, CUstream Stream);

/// The spec a call would use for Op/Dir with this config (tile from the heuristic, 16-byte
/// pointer alignment). Useful to pre-build or inspect exactly what the runtime launches.
llvm::Expected<KernelSpec> specFor(const MixConfig &Config, Op Operation, Direction Dir);

} // namespace mhcjit
