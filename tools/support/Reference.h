// mhcjit tool support: float64 CPU references written from SPEC.md, and the error measure.
// Shared by the GPU tests and `mhc-jit demo`; inputs are the values the GPU sees (already rounded).
#pragma once

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
};

/// SPEC.md 4, forward: y[m][c] = sum_j pre[m][j] * x[m][j][c].
std::vector<double> aggregateForwardRef(const StreamShape &S, const std::vector<float> &X,
                                        const std::vector<float> &Pre);

/// SPEC.md 4, backward: dx[m][j][c] = dy[m][c] * pre[m][j] (+ DxIn when accumulating);
/// dpre[m][j] = sum_c dy[m][c] * x[m][j][c].
void aggregateBackwardRef(const StreamShape &S, const std::vector<float> &DY,
                          const std::vector<float> &X, const std::vector<float> &Pre,
                          const std::vector<float> *DxIn, std::vector<double> &DX,
                          std::vector<double> &DPre);

/// ||out - ref|| / ||ref|| (infinity if out has a NaN/Inf where ref is finite; 0/0 -> 0).
double relativeError(const std::vector<float> &Out, const std::vector<double> &Ref);

} // namespace mhcjit
