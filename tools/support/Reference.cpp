// mhcjit tool support: float64 references of the mHC ops, line by line from SPEC.md.
#include "Reference.h"
#include "Parallel.h"

#include <cmath>
#include <limits>

namespace mhcjit {

std::vector<double> aggregateForwardRef(const StreamShape &S, const std::vector<float> &X,
                                        const std::vector<float> &Pre) {
  std::vector<double> Y(S.M * S.C, 0.0);
  parallelFor(S.M * S.C, [&](int64_t Begin, int64_t End) {
    for (int64_t I = Begin; I < End; ++I) {
      int64_t m = I / S.C, c = I % S.C;
      double Sum = 0;
      for (int j = 0; j < S.N; ++j)
        Sum += double(Pre[m * S.N + j]) * double(X[S.index(m, j, c)]);
      Y[I] = Sum;
    }
  });
  return Y;
}

void aggregateBackwardRef(const StreamShape &S, const std::vector<float> &DY,
                          const std::vector<float> &X, const std::vector<float> &Pre,
                          const std::vector<float> *DxIn, std::vector<double> &DX,
                          std::vector<double> &DPre) {
  DX.assign(S.elements(), 0.0);
  DPre.assign(S.M * S.N, 0.0);
  parallelFor(
      S.M * S.N,
      [&](int64_t Begin, int64_t End) {
        for (int64_t Row = Begin; Row < End; ++Row) {
          int64_t m = Row / S.N;
          int j = int(Row % S.N);
          double Sum = 0;
          for (int64_t c = 0; c < S.C; ++c) {
            int64_t I = S.index(m, j, c);
            double G = DY[m * S.C + c];
            DX[I] = G * double(Pre[m * S.N + j]) + (DxIn ? double((*DxIn)[I]) : 0.0);
            Sum += G * double(X[I]);
          }
          DPre[m * S.N + j] = Sum;
        }
      },
      /*Grain=*/std::max<int64_t>(1, (1 << 14) / S.C));
}

double relativeError(const std::vector<float> &Out, const std::vector<double> &Ref) {
  if (Out.size() != Ref.size())
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
            double D = double(Out[I]) - Ref[I];
            Diff += D * D;
            Norm += Ref[I] * Ref[I];
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

} // namespace mhcjit
