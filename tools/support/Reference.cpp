// mhcjit tool support: helpers shared by the float64 references (reciprocal RMS, fixed-order
// column sums) and the error measure the GPU tests report.
#include "Reference.h"
#include "Parallel.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace mhcjit {

double reciprocalRms(double Ms, double RmsEps, RmsForm Form) {
  return Form == RmsForm::Inside ? 1.0 / std::sqrt(Ms + RmsEps) : 1.0 / (std::sqrt(Ms) + RmsEps);
}

double reciprocalRmsSlope(double Ms, double RmsEps, RmsForm Form) {
  if (Form == RmsForm::Inside)
    return -0.5 * std::pow(Ms + RmsEps, -1.5);
  // Outside: -r^2 / (2 sqrt(ms)), which SPEC.md 2 takes as 0 where ms = 0 (x is 0 there too).
  if (Ms == 0)
    return 0;
  double R = reciprocalRms(Ms, RmsEps, Form);
  return -R * R / (2 * std::sqrt(Ms));
}

std::vector<double> columnSums(const std::vector<double> &A, int64_t Rows, int64_t Cols) {
  std::vector<double> Out(Cols, 0.0);
  // Each chunk owns a range of columns and walks the rows in order: reproducible sums.
  parallelFor(
      Cols,
      [&](int64_t Begin, int64_t End) {
        for (int64_t R = 0; R < Rows; ++R)
          for (int64_t C = Begin; C < End; ++C)
            Out[C] += A[R * Cols + C];
      },
      referenceGrain(Rows));
  return Out;
}

double relativeError(const std::vector<float> &Out, const std::vector<double> &Ref, double Resolution,
                     const std::vector<double> *Magnitude) {
  if (Out.size() != Ref.size() || (Magnitude && Magnitude->size() != Ref.size()))
    return std::numeric_limits<double>::infinity();
  // Partial sums per fixed chunk, added in chunk order: the same value on every run.
  const int64_t N = static_cast<int64_t>(Out.size());
  const int64_t Chunks = parallelChunks(N);
  std::vector<double> Diffs(Chunks, 0.0), Norms(Chunks, 0.0);
  std::vector<char> Bad(Chunks, 0);
  parallelFor(
      Chunks,
      [&](int64_t FirstChunk, int64_t EndChunk) {
        for (int64_t K = FirstChunk; K < EndChunk; ++K) {
          double Diff = 0, Norm = 0;
          for (int64_t I = N * K / Chunks; I < N * (K + 1) / Chunks; ++I) {
            if (!std::isfinite(Out[I]) && std::isfinite(Ref[I]))
              Bad[K] = 1;
            double D = std::max(0.0, std::fabs(double(Out[I]) - Ref[I]) - Resolution);
            Diff += D * D;
            const double Scale = Magnitude ? (*Magnitude)[I] : Ref[I];
            Norm += Scale * Scale;
          }
          Diffs[K] = Diff;
          Norms[K] = Norm;
        }
      },
      /*Grain=*/1);
  double Diff = 0, Norm = 0;
  for (size_t K = 0; K < Diffs.size(); ++K) {
    if (Bad[K])
      return std::numeric_limits<double>::infinity();
    Diff += Diffs[K];
    Norm += Norms[K];
  }
  if (Norm == 0)
    return Diff == 0 ? 0 : std::numeric_limits<double>::infinity();
  return std::sqrt(Diff / Norm);
}

double subnormalStep(DType Type) {
  switch (Type) {
  case DType::FP16: return std::ldexp(1.0, -24);
  case DType::BF16: return std::ldexp(1.0, -133);
  case DType::FP32: return std::ldexp(1.0, -149);
  }
  return 0;
}

} // namespace mhcjit
