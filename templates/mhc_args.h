// mhcjit templates: kernel argument structs, shared verbatim by host code and device templates.
// Plain C++ (no CUDA keywords), so the host fills exactly the layout the kernel reads.
#pragma once

namespace mhc {

/// aggregate forward: y[m][c] = sum_j pre[m][j] * x[m][j][c].
struct AggregateFwdArgs {
  const void *x;    ///< (M, n, C) stream dtype, in the kernel's layout
  const float *pre; ///< (M, n) fp32
  void *y;          ///< (M, C) stream dtype
  long long M;      ///< tokens
};

/// aggregate backward: dx[m][j][c] = dy[m][c] * pre[m][j]; dpre[m][j] = sum_c dy[m][c] * x[m][j][c].
struct AggregateBwdArgs {
  const void *dy;   ///< (M, C) stream dtype
  const void *x;    ///< (M, n, C) stream dtype
  const float *pre; ///< (M, n) fp32
  void *dx;         ///< (M, n, C): stream dtype, or fp32 added into when the kernel accumulates
  float *dpre;      ///< (M, n) fp32
  long long M;
};

} // namespace mhc
