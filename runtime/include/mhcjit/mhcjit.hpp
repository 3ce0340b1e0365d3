// mhcjit: the public C++ API. Each op direction is one call: a config, M, device pointers, a stream.
// Kernels are JIT-compiled for the current device on first use and cached (memory and disk).
#pragma once

#include "mhcjit/Contract.h"
#include "mhcjit/KernelSpec.h"

#include "llvm/ADT/Optional.h"
#include "llvm/Support/Error.h"

#include <cuda.h>
#include <cstdint>
#include <vector>

namespace mhcjit {

/// What every op call is specialised on (the M-independent part of a kernel spec).
struct MixConfig {
  int N = 4;                      ///< streams, 1..8
  int64_t C = 0;                  ///< hidden size per stream, >= 1
  DType StreamType = DType::BF16; ///< dtype of x, f and the stream outputs
  ContractConstants Contract = contractPreset(ContractKind::TE);
  llvm::Optional<Layout> StreamLayout; ///< default: the contract's layout
  Precision Prec = Precision::FP32;    ///< projection products: exact fp32 or tf32
  /// Element type of the parameters phi, gamma (project) and bias (expand_combine): fp32, or
  /// the stream dtype (converted to fp32 on load). Their gradients dphi, dgamma and dbias are
  /// fp32 either way. head's w is fp32 only (SPEC.md 6) and ignores this.
  ParamType Params = ParamType::FP32;

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

/// project (SPEC.md 1): H[m][t] = sum_k x[m][k] phi[t][k] gamma[k], ms[m] = mean_k x[m][k]^2.
struct ProjectForwardArgs {
  int64_t M = 0;
  const void *X = nullptr;       ///< (M, n*C) stream dtype; column k is the layout's flattened index
  const void *Phi = nullptr;     ///< (N, n*C), N = n*n + 2n; config.Params' dtype
  const void *Gamma = nullptr;   ///< (n*C) norm weight in config.Params' dtype, or null for none
  float *H = nullptr;            ///< (M, N)
  float *Ms = nullptr;           ///< (M)
};
struct ProjectBackwardArgs {
  int64_t M = 0;
  const void *X = nullptr;
  const void *Phi = nullptr;     ///< config.Params' dtype
  const void *Gamma = nullptr;   ///< config.Params' dtype; null when the forward had none
  const float *DH = nullptr;     ///< (M, N)
  const float *DMs = nullptr;    ///< (M)
  void *DX = nullptr;            ///< (M, n*C): stream dtype, or fp32 added into
  float *DPhi = nullptr;         ///< (N, n*C), written (fp32 whatever config.Params is)
  float *DGamma = nullptr;       ///< (n*C), written (fp32); required when Gamma is given
  bool AccumulateDx = false;
};

/// scale (SPEC.md 2): pre, post, logits from H and ms with the contract's constants.
struct ScaleForwardArgs {
  int64_t M = 0;
  const float *H = nullptr, *Ms = nullptr;
  const float *Alpha = nullptr; ///< (3): a_pre, a_post, a_res
  const float *Beta = nullptr;  ///< (N)
  float *Pre = nullptr, *Post = nullptr; ///< (M, n) each
  float *Logits = nullptr;               ///< (M, n, n)
};
struct ScaleBackwardArgs {
  int64_t M = 0;
  const float *H = nullptr, *Ms = nullptr, *Alpha = nullptr, *Beta = nullptr;
  const float *DPre = nullptr, *DPost = nullptr, *DLogits = nullptr;
  float *DH = nullptr, *DMs = nullptr;      ///< (M, N), (M)
  float *DAlpha = nullptr, *DBeta = nullptr; ///< (3), (N), written
};

/// sinkhorn (SPEC.md 3) with the contract's algorithm, iterations and eps.
struct SinkhornForwardArgs {
  int64_t M = 0;
  const float *Logits = nullptr; ///< (M, n, n)
  float *Res = nullptr;          ///< (M, n, n)
};
struct SinkhornBackwardArgs {
  int64_t M = 0;
  const float *Logits = nullptr, *DRes = nullptr;
  float *DLogits = nullptr;
};

/// scale_sinkhorn: scale then sinkhorn in one kernel a direction, the same results as the two
/// ops in a row (SPEC.md 2 and 3) without the logits in global memory.
struct ScaleSinkhornForwardArgs {
  int64_t M = 0;
  const float *H = nullptr, *Ms = nullptr;
  const float *Alpha = nullptr; ///< (3): a_pre, a_post, a_res
  const float *Beta = nullptr;  ///< (N)
  float *Pre = nullptr, *Post = nullptr; ///< (M, n) each
  float *Res = nullptr;                  ///< (M, n, n)
};
struct ScaleSinkhornBackwardArgs {
  int64_t M = 0;
  const float *H = nullptr, *Ms = nullptr, *Alpha = nullptr, *Beta = nullptr;
  const float *DPre = nullptr, *DPost = nullptr, *DRes = nullptr;
  float *DH = nullptr, *DMs = nullptr;      ///< (M, N), (M)
  float *DAlpha = nullptr, *DBeta = nullptr; ///< (3), (N), written
};

/// expand_combine (SPEC.md 5): out[j][c] = post[j] (f[c] + bias[c]) + sum_i res[i][j] x[i][c].
struct ExpandCombineForwardArgs {
  int64_t M = 0;
  const void *F = nullptr;       ///< (M, C) stream dtype
  const void *Bias = nullptr;    ///< (C) in config.Params' dtype, or null for none
  const float *Post = nullptr;   ///< (M, n)
  const void *X = nullptr;       ///< (M, n, C)
  const float *Res = nullptr;    ///< (M, n, n)
  void *Out = nullptr;           ///< (M, n, C)
};
struct ExpandCombineBackwardArgs {
  int64_t M = 0;
  const void *DOut = nullptr, *F = nullptr;
  const void *Bias = nullptr;   ///< config.Params' dtype, or null
  const float *Post = nullptr;
  const void *X = nullptr;
  const float *Res = nullptr;
  void *DF = nullptr;        ///< (M, C) stream dtype
  float *DBias = nullptr;    ///< (C), written (fp32); required when Bias is given
  float *DPost = nullptr;    ///< (M, n)
  float *DRes = nullptr;     ///< (M, n, n)
  void *DX = nullptr;        ///< (M, n, C): stream dtype, or fp32 added into
  bool AccumulateDx = false;
};

/// expand (SPEC.md 6): x[j] = y; backward dy = sum_j dx[j].
struct ExpandForwardArgs {
  int64_t M = 0;
  const void *Y = nullptr; ///< (M, C)
  void *X = nullptr;       ///< (M, n, C)
};
struct ExpandBackwardArgs {
  int64_t M = 0;
  const void *DX = nullptr; ///< (M, n, C)
  void *DY = nullptr;       ///< (M, C)
};

/// contract (SPEC.md 6): y = (1/n) sum_j x[j]; backward dx[j] = dy / n.
struct ContractForwardArgs {
  int64_t M = 0;
  const void *X = nullptr;
  void *Y = nullptr;
};
struct ContractBackwardArgs {
  int64_t M = 0;
  const void *DY = nullptr;
  void *DX = nullptr;       ///< stream dtype, or fp32 added into
  bool AccumulateDx = false;
};

/// head (SPEC.md 6): the learned contraction before the final norm.
struct HeadForwardArgs {
  int64_t M = 0;
  const void *X = nullptr;      ///< (M, n, C)
  const float *W = nullptr;     ///< (n, n*C), columns in x's flattened index
  const float *Scale = nullptr; ///< (1)
  const float *Base = nullptr;  ///< (n)
  void *Y = nullptr;            ///< (M, C)
};
struct HeadBackwardArgs {
  int64_t M = 0;
  const void *X = nullptr;
  const float *W = nullptr, *Scale = nullptr, *Base = nullptr;
  const void *DY = nullptr;
  void *DX = nullptr;           ///< stream dtype, or fp32 added into
  float *DW = nullptr;          ///< (n, n*C), written
  float *DScale = nullptr;      ///< (1), written
  float *DBase = nullptr;       ///< (n), written
  bool AccumulateDx = false;
};

/// Every call below checks its arguments first (nothing launches on an error: bad config, M
/// outside 1..2^40, null or misaligned pointers), then launches on Stream in the current context.
/// Parameter gradients (dphi, dgamma, dalpha, dbeta, dbias, dw, dscale, dbase) are written,
/// summed over tokens in a fixed order through per-block partials (no atomics).
llvm::Error projectForward(const MixConfig &Config, const ProjectForwardArgs &Args, CUstream Stream);
llvm::Error projectBackward(const MixConfig &Config, const ProjectBackwardArgs &Args, CUstream Stream);
llvm::Error scaleForward(const MixConfig &Config, const ScaleForwardArgs &Args, CUstream Stream);
llvm::Error scaleBackward(const MixConfig &Config, const ScaleBackwardArgs &Args, CUstream Stream);
llvm::Error sinkhornForward(const MixConfig &Config, const SinkhornForwardArgs &Args, CUstream Stream);
llvm::Error sinkhornBackward(const MixConfig &Config, const SinkhornBackwardArgs &Args, CUstream Stream);
llvm::Error scaleSinkhornForward(const MixConfig &Config, const ScaleSinkhornForwardArgs &Args, CUstream Stream);
llvm::Error scaleSinkhornBackward(const MixConfig &Config, const ScaleSinkhornBackwardArgs &Args, CUstream Stream);
llvm::Error expandCombineForward(const MixConfig &Config, const ExpandCombineForwardArgs &Args, CUstream Stream);
llvm::Error expandCombineBackward(const MixConfig &Config, const ExpandCombineBackwardArgs &Args, CUstream Stream);
llvm::Error expandForward(const MixConfig &Config, const ExpandForwardArgs &Args, CUstream Stream);
llvm::Error expandBackward(const MixConfig &Config, const ExpandBackwardArgs &Args, CUstream Stream);
llvm::Error contractForward(const MixConfig &Config, const ContractForwardArgs &Args, CUstream Stream);
llvm::Error contractBackward(const MixConfig &Config, const ContractBackwardArgs &Args, CUstream Stream);
llvm::Error headForward(const MixConfig &Config, const HeadForwardArgs &Args, CUstream Stream);
llvm::Error headBackward(const MixConfig &Config, const HeadBackwardArgs &Args, CUstream Stream);

/// Launches aggregate forward on Stream (0 = the legacy default stream) in the current context.
/// Errors (nothing is launched): a bad config, M < 1, null or misaligned pointers.
llvm::Error aggregateForward(const MixConfig &Config, const AggregateForwardArgs &Args, CUstream Stream);

/// Launches aggregate backward: dx = dy * pre[j] (written or accumulated), dpre = sum_c dy * x[j].
llvm::Error aggregateBackward(const MixConfig &Config, const AggregateBackwardArgs &Args, CUstream Stream);

/// Every kernel a call of Op/Dir with this config may launch, with 16-byte aligned pointers:
/// the optional-input variants (gamma, bias), the fp32-accumulating dx variant, the second
/// stage of head backward and the reduce_rows kernel that finishes parameter gradients.
/// `mhc-jit prewarm` compiles exactly these.
llvm::Expected<std::vector<KernelSpec>> kernelsForCall(const MixConfig &Config, Op Operation, Direction Dir);

/// kernelsForCall() of a given base spec (as specFor() makes it, with any tile): the kernels a
/// call launches with that tile (`mhc-jit prewarm --tuning-db` compiles these per DB winner).
/// Params is the call's parameter type, given to the variants it applies to (effectiveParams;
/// e.g. expand_combine's bias variant, whose base spec has no bias and so fp32 parameters); a
/// base spec with stream-dtype parameters (project) keeps them whatever Params says.
std::vector<KernelSpec> kernelVariants(const KernelSpec &Base, ParamType Params = ParamType::FP32);

/// The spec a call would use for Op/Dir with this config (16-byte pointer alignment; the tile
/// from the tuning DB's any-M entry for the current device when there is one, else from the
/// heuristic: always the heuristic without a DB file or a GPU). Useful to pre-build or inspect
/// what the runtime launches.
llvm::Expected<KernelSpec> specFor(const MixConfig &Config, Op Operation, Direction Dir);

} // namespace mhcjit
