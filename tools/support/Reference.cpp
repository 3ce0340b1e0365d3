// mhcjit tool support: float64 references of the mHC ops, line by line from SPEC.md.
#include "Reference.h"

#include <cmath>
#include <limits>

namespace mhcjit {

std::vector<double> aggregateForwardRef(const StreamShape &S, const std::vector<float> &X,
                                        const std::vector<float> &Pre) {
  std::vector<double> Y(S.M * S.C, 0.0);
  for (int64_t m = 0; m < S.M; ++m)
    for (int64_t c = 0; c < S.C; ++c) {
      double Sum = 0;
      for (int j = 0; j < S.N; ++j)
        Sum += double(Pre[m * S.N + j]) * double(X[S.index(m, j, c)]);
      Y[m * S.C + c] = Sum;
    }
  return Y;
}

void aggregateBackwardRef(const StreamShape &S, const std::vector<float> &DY,
                          const std::vector<float> &X, const std::vector<float> &Pre,
                          const std::vector<float> *DxIn, std::vector<double> &DX,
                          std::vector<double> &DPre) {
  DX.assign(S.elements(), 0.0);
  DPre.assign(S.M * S.N, 0.0);
  for (int64_t m = 0; m < S.M; ++m)
    for (int j = 0; j < S.N; ++j) {
      double Sum = 0;
      for (int64_t c = 0; c < S.C; ++c) {
        int64_t I = S.index(m, j, c);
        double G = DY[m * S.C + c];
        DX[I] = G * double(Pre[m * S.N + j]) + (DxIn ? double((*DxIn)[I]) : 0.0);
        Sum += G * double(X[I]);
      }
      DPre[m * S.N + j] = Sum;
    }
}

double relativeError(const std::vector<float> &Out, const std::vector<double> &Ref) {
  if (Out.size() != Ref.size())
    return std::numeric_limits<double>::infinity();
  double Diff = 0, Norm = 0;
  for (size_t I = 0; I < Out.size(); ++I) {
    if (!std::isfinite(Out[I]) && std::isfinite(Ref[I]))
      return std::numeric_limits<double>::infinity();
    double D = double(Out[I]) - Ref[I];
    Diff += D * D;
    Norm += Ref[I] * Ref[I];
  }
  if (Norm == 0)
    return Diff == 0 ? 0 : std::numeric_limits<double>::infinity();
  return std::sqrt(Diff / Norm);
}

} // namespace mhcjit
