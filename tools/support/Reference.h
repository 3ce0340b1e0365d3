// mhcjit tool support: float64 CPU references written from SPEC.md, and the error measure.
// Shared by the GPU tests and `mhc-jit demo`; inputs are the values the GPU sees (already rounded).
#pragma once

#include "ParamTensor.h"

#include "mhcjit/Contract.h"

#include <cstdint>
#include <vector>

namespace mhcjit {

/// Shape of a stream tensor: M tokens, n streams, C columns, in a layout.
struct StreamShape {
  int64_t M;
  int N;
  int64_t C;
  Layout L;
  /// Element index of x[m][j][c] (SPEC.md "Layouts").
  int64_t index(int64_t m, int j, int64_t c) const {
    return L == Layout::SBCN ? (m * C + c) * N + j : (m * N + j) * C + c;
  }
  int64_t elements() const { return M * N * C; }
  /// K = n*C, the flattened width of one token (x[m][k] is element m*K + k in both layouts).
  int64_t width() const { return N * C; }
  /// n^2 + 2n, the length of one token's mix vector (pre, post, res).
  int mixes() const { return N * N + 2 * N; }
};

// Conventions of every reference below. Inputs are fp32 vectors holding exactly what the GPU
// reads; the parameters phi, gamma and bias are ParamTensors, read in their own dtype (fp32, or
// the stream dtype; an fp32 vector converts implicitly); an empty one stands for an absent
// optional input (gamma, bias). Ops that need only
// M and n (scale, sinkhorn) still take a StreamShape and ignore its C and layout. A non-null
// DxIn makes the backward add its dx into that fp32 buffer (SPEC.md "Gradient accumulation").
// Parameter gradients (reductions over M) are summed in token order: the same bits every run.

/// r of SPEC.md 2: 1/sqrt(ms + eps) (inside) or 1/(sqrt(ms) + eps) (outside).
double reciprocalRms(double Ms, double RmsEps, RmsForm Form);
/// dr/dms of reciprocalRms: -(1/2)(ms + eps)^(-3/2) (inside) or -r^2/(2 sqrt(ms)) (outside,
/// taken as 0 where ms = 0).
double reciprocalRmsSlope(double Ms, double RmsEps, RmsForm Form);
/// Out[c] = sum_r A[r*Cols + c] over the Rows rows of a row-major matrix, rows added in order.
std::vector<double> columnSums(const std::vector<double> &A, int64_t Rows, int64_t Cols);
/// Items per parallelFor chunk when each item costs about Work multiply-adds.
inline int64_t referenceGrain(int64_t Work) {
  return Work >= (1 << 16) ? 1 : (1 << 16) / (Work < 1 ? 1 : Work);
}

/// SPEC.md 1, forward: H (M, n^2+2n) and ms (M) of x (M, K) against phi (N, K) and gamma (K).
struct ProjectOutputs {
  std::vector<double> H;
  std::vector<double> Ms;
};
ProjectOutputs projectForwardRef(const StreamShape &S, const std::vector<float> &X,
                                 const ParamTensor &Phi, const ParamTensor &Gamma);

/// SPEC.md 1, backward: dx (M, K), dphi (N, K) and dgamma (K; empty when gamma is absent).
struct ProjectGrads {
  std::vector<double> DX;
  std::vector<double> DPhi;
  std::vector<double> DGamma;
};
ProjectGrads projectBackwardRef(const StreamShape &S, const std::vector<float> &DH,
                                const std::vector<float> &DMs, const std::vector<float> &X,
                                const ParamTensor &Phi, const ParamTensor &Gamma,
                                const std::vector<float> *DxIn = nullptr);

/// SPEC.md 2, forward: pre (M, n), post (M, n), logits (M, n, n) from H, ms, alpha (3), beta (N),
/// with the rms form, rms_eps, pre_eps and post_mult of Consts.
struct ScaleOutputs {
  std::vector<double> Pre;
  std::vector<double> Post;
  std::vector<double> Logits;
};
ScaleOutputs scaleForwardRef(const StreamShape &S, const ContractConstants &Consts,
                             const std::vector<float> &H, const std::vector<float> &Ms,
                             const std::vector<float> &Alpha, const std::vector<float> &Beta);

/// SPEC.md 2, backward: dH (M, N), dms (M), dalpha (3), dbeta (N).
struct ScaleGrads {
  std::vector<double> DH;
  std::vector<double> DMs;
  std::vector<double> DAlpha;
  std::vector<double> DBeta;
  /// dms and dalpha with every term of their sums taken by absolute value (|dr| sum_t |gh a H|,
  /// sum_m sum_t |gh H r|): the scale of their rounding errors where the terms cancel.
  std::vector<double> DMsMagnitude;
  std::vector<double> DAlphaMagnitude;
};
ScaleGrads scaleBackwardRef(const StreamShape &S, const ContractConstants &Consts,
                            const std::vector<float> &DPre, const std::vector<float> &DPost,
                            const std::vector<float> &DLogits, const std::vector<float> &H,
                            const std::vector<float> &Ms, const std::vector<float> &Alpha,
                            const std::vector<float> &Beta);

/// SPEC.md 3, forward: res (M, n, n) from logits (M, n, n), Consts' Sinkhorn kind, iterations
/// and eps (the eps is ignored by `log`).
std::vector<double> sinkhornForwardRef(const StreamShape &S, const ContractConstants &Consts,
                                       const std::vector<float> &Logits);

/// SPEC.md 3, backward: the exact dlogits (M, n, n) given dres, iterations recomputed.
std::vector<double> sinkhornBackwardRef(const StreamShape &S, const ContractConstants &Consts,
                                        const std::vector<float> &DRes,
                                        const std::vector<float> &Logits);

/// SPEC.md 4, forward: y[m][c] = sum_j pre[m][j] * x[m][j][c].
std::vector<double> aggregateForwardRef(const StreamShape &S, const std::vector<float> &X,
                                        const std::vector<float> &Pre);

/// SPEC.md 4, backward: dx[m][j][c] = dy[m][c] * pre[m][j] (+ DxIn when accumulating);
/// dpre[m][j] = sum_c dy[m][c] * x[m][j][c].
void aggregateBackwardRef(const StreamShape &S, const std::vector<float> &DY,
                          const std::vector<float> &X, const std::vector<float> &Pre,
                          const std::vector<float> *DxIn, std::vector<double> &DX,
                          std::vector<double> &DPre);

/// SPEC.md 5, forward: x'[m][j][c] = post[m][j]*(f[m][c] + bias[c]) + sum_i res[m][i][j]*x[m][i][c]
/// in x's layout; f (M, C), bias (C or empty), post (M, n), res (M, n, n).
std::vector<double> expandCombineForwardRef(const StreamShape &S, const std::vector<float> &F,
                                            const ParamTensor &Bias,
                                            const std::vector<float> &Post,
                                            const std::vector<float> &X,
                                            const std::vector<float> &Res);

/// SPEC.md 5, backward given dx' (x's layout): df (M, C), dbias (C; empty when bias is absent),
/// dpost (M, n), dres (M, n, n), dx (x's layout).
struct ExpandCombineGrads {
  std::vector<double> DF;
  std::vector<double> DBias;
  std::vector<double> DPost;
  std::vector<double> DRes;
  std::vector<double> DX;
};
ExpandCombineGrads
expandCombineBackwardRef(const StreamShape &S, const std::vector<float> &DOut,
                         const std::vector<float> &F, const ParamTensor &Bias,
                         const std::vector<float> &Post, const std::vector<float> &X,
                         const std::vector<float> &Res, const std::vector<float> *DxIn = nullptr);

/// SPEC.md 6, expand: x (M, n, C) in the layout with every stream equal to y (M, C).
std::vector<double> expandForwardRef(const StreamShape &S, const std::vector<float> &Y);
/// SPEC.md 6, expand backward: dy[m][c] = sum_j dx[m][j][c].
std::vector<double> expandBackwardRef(const StreamShape &S, const std::vector<float> &DX);

/// SPEC.md 6, contract: y[m][c] = (1/n) sum_j x[m][j][c].
std::vector<double> contractForwardRef(const StreamShape &S, const std::vector<float> &X);
/// SPEC.md 6, contract backward: dx[m][j][c] = dy[m][c]/n (+ DxIn when accumulating).
std::vector<double> contractBackwardRef(const StreamShape &S, const std::vector<float> &DY,
                                        const std::vector<float> *DxIn = nullptr);

/// SPEC.md 6, head forward: y (M, C) and the stream weights wgt (M, n), from x, w (n, K) with
/// columns in x's index k, scale (1) and base (n); r is always the inside form of Consts.RmsEps,
/// and wgt = sigmoid(z) + Consts.PreEps.
struct HeadOutputs {
  std::vector<double> Y;
  std::vector<double> Wgt;
};
HeadOutputs headForwardRef(const StreamShape &S, const ContractConstants &Consts,
                           const std::vector<float> &X, const std::vector<float> &W,
                           const std::vector<float> &Scale, const std::vector<float> &Base);

/// SPEC.md 6, head backward given dy (M, C): dx (x's layout), dw (n, K), dscale (1), dbase (n).
struct HeadGrads {
  std::vector<double> DX;
  std::vector<double> DW;
  std::vector<double> DScale;
  std::vector<double> DBase;
};
HeadGrads headBackwardRef(const StreamShape &S, const ContractConstants &Consts,
                          const std::vector<float> &DY, const std::vector<float> &X,
                          const std::vector<float> &W, const std::vector<float> &Scale,
                          const std::vector<float> &Base, const std::vector<float> *DxIn = nullptr);

/// ||out - ref|| / ||ref|| (infinity if out has a NaN/Inf where ref is finite; 0/0 -> 0).
/// Resolution: an absolute difference each element is allowed before it counts, for outputs
/// stored in a format that cannot resolve less (subnormalStep of the stored dtype); 0 otherwise.
/// Magnitude (same size as Ref), where given, replaces ||ref|| as the denominator: for a sum
/// whose terms cancel, ||sum of |terms| ||, the scale its rounding errors are relative to.
double relativeError(const std::vector<float> &Out, const std::vector<double> &Ref, double Resolution = 0,
                     const std::vector<double> *Magnitude = nullptr);

/// The spacing of dtype's subnormal numbers (fp16 2^-24, bf16 2^-133, fp32 2^-149): below its
/// smallest normal number a format has this absolute resolution and no relative one, so an
/// output of 1e-7 in fp16 carries a rounding error of up to 25% that no kernel can avoid.
double subnormalStep(DType Type);

} // namespace mhcjit
