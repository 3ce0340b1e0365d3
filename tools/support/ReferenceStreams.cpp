// mhcjit tool support: float64 references of the stream ops: aggregate (SPEC.md 4),
// expand_combine (SPEC.md 5), expand and contract (SPEC.md 6), forward and backward.
#include "Parallel.h"
#include "Reference.h"

#include <algorithm>

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

std::vector<double> expandCombineForwardRef(const StreamShape &S, const std::vector<float> &F,
                                            const ParamTensor &Bias,
                                            const std::vector<float> &Post,
                                            const std::vector<float> &X,
                                            const std::vector<float> &Res) {
  const int n = S.N;
  std::vector<double> Out(S.elements(), 0.0);
  parallelFor(
      S.M,
      [&](int64_t Begin, int64_t End) {
        for (int64_t m = Begin; m < End; ++m)
          for (int64_t c = 0; c < S.C; ++c) {
            double Fb = double(F[m * S.C + c]) + (Bias.empty() ? 0.0 : double(Bias[c]));
            for (int j = 0; j < n; ++j) {
              // The residual matrix is contracted over its first index: res[m][i][j].
              double Sum = double(Post[m * n + j]) * Fb;
              for (int i = 0; i < n; ++i)
                Sum += double(Res[(m * n + i) * n + j]) * double(X[S.index(m, i, c)]);
              Out[S.index(m, j, c)] = Sum;
            }
          }
      },
      referenceGrain(S.C * n * (n + 1)));
  return Out;
}

ExpandCombineGrads
expandCombineBackwardRef(const StreamShape &S, const std::vector<float> &DOut,
                         const std::vector<float> &F, const ParamTensor &Bias,
                         const std::vector<float> &Post, const std::vector<float> &X,
                         const std::vector<float> &Res, const std::vector<float> *DxIn) {
  const int n = S.N;
  const bool HasBias = !Bias.empty();
  ExpandCombineGrads G;
  G.DF.assign(S.M * S.C, 0.0);
  G.DPost.assign(S.M * n, 0.0);
  G.DRes.assign(S.M * n * n, 0.0);
  G.DX.assign(S.elements(), 0.0);
  parallelFor(
      S.M,
      [&](int64_t Begin, int64_t End) {
        for (int64_t m = Begin; m < End; ++m)
          for (int64_t c = 0; c < S.C; ++c) {
            double Fb = double(F[m * S.C + c]) + (HasBias ? double(Bias[c]) : 0.0);
            double Df = 0;
            for (int j = 0; j < n; ++j) {
              double D = DOut[S.index(m, j, c)];
              // df = sum_j dx'[j]*post[j]; dpost[j] = sum_c dx'[j]*(f + bias).
              Df += D * double(Post[m * n + j]);
              G.DPost[m * n + j] += D * Fb;
              // dres[i][j] = sum_c x[i]*dx'[j].
              for (int i = 0; i < n; ++i)
                G.DRes[(m * n + i) * n + j] += double(X[S.index(m, i, c)]) * D;
            }
            G.DF[m * S.C + c] = Df;
            // dx[i] = sum_j res[i][j]*dx'[j].
            for (int i = 0; i < n; ++i) {
              int64_t I = S.index(m, i, c);
              double Dot = 0;
              for (int j = 0; j < n; ++j)
                Dot += double(Res[(m * n + i) * n + j]) * double(DOut[S.index(m, j, c)]);
              G.DX[I] = Dot + (DxIn ? double((*DxIn)[I]) : 0.0);
            }
          }
      },
      referenceGrain(S.C * n * (2 * n + 2)));
  // dbias[c] = sum_m df[m][c], in token order.
  if (HasBias)
    G.DBias = columnSums(G.DF, S.M, S.C);
  return G;
}

std::vector<double> expandForwardRef(const StreamShape &S, const std::vector<float> &Y) {
  std::vector<double> X(S.elements(), 0.0);
  parallelFor(
      S.M,
      [&](int64_t Begin, int64_t End) {
        for (int64_t m = Begin; m < End; ++m)
          for (int j = 0; j < S.N; ++j)
            for (int64_t c = 0; c < S.C; ++c)
              X[S.index(m, j, c)] = Y[m * S.C + c];
      },
      referenceGrain(S.width()));
  return X;
}

std::vector<double> expandBackwardRef(const StreamShape &S, const std::vector<float> &DX) {
  std::vector<double> DY(S.M * S.C, 0.0);
  parallelFor(
      S.M,
      [&](int64_t Begin, int64_t End) {
        for (int64_t m = Begin; m < End; ++m)
          for (int64_t c = 0; c < S.C; ++c) {
            double Sum = 0;
            for (int j = 0; j < S.N; ++j)
              Sum += DX[S.index(m, j, c)];
            DY[m * S.C + c] = Sum;
          }
      },
      referenceGrain(S.width()));
  return DY;
}

std::vector<double> contractForwardRef(const StreamShape &S, const std::vector<float> &X) {
  std::vector<double> Y(S.M * S.C, 0.0);
  parallelFor(
      S.M,
      [&](int64_t Begin, int64_t End) {
        for (int64_t m = Begin; m < End; ++m)
          for (int64_t c = 0; c < S.C; ++c) {
            double Sum = 0;
            for (int j = 0; j < S.N; ++j)
              Sum += X[S.index(m, j, c)];
            Y[m * S.C + c] = Sum / S.N;
          }
      },
      referenceGrain(S.width()));
  return Y;
}

std::vector<double> contractBackwardRef(const StreamShape &S, const std::vector<float> &DY,
                                        const std::vector<float> *DxIn) {
  std::vector<double> DX(S.elements(), 0.0);
  parallelFor(
      S.M,
      [&](int64_t Begin, int64_t End) {
        for (int64_t m = Begin; m < End; ++m)
          for (int j = 0; j < S.N; ++j)
            for (int64_t c = 0; c < S.C; ++c) {
              int64_t I = S.index(m, j, c);
              DX[I] = double(DY[m * S.C + c]) / S.N + (DxIn ? double((*DxIn)[I]) : 0.0);
            }
      },
      referenceGrain(S.width()));
  return DX;
}

} // namespace mhcjit
