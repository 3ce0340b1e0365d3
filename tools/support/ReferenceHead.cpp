// mhcjit tool support: float64 reference of head (SPEC.md 6), the learned contraction of the
// streams before the final norm (DeepSeek mhc_head, Megatron learned_output_contract).
#include "Parallel.h"
#include "Reference.h"

#include <cmath>

namespace mhcjit {

namespace {

/// The per-token quantities of head's forward pass.
struct HeadToken {
  std::vector<double> U;   ///< u[j] = sum_k x[k]*w[j][k]
  std::vector<double> Mix; ///< u[j]*r
  std::vector<double> Sig; ///< sigmoid(z[j])
  std::vector<double> Wgt; ///< sigmoid(z[j]) + pre_eps
  double Ms = 0, R = 0;
};

/// Head's forward pass of token m up to the stream weights; r is always the inside form.
void headToken(const StreamShape &S, const ContractConstants &Consts, const std::vector<float> &X,
               const std::vector<float> &W, double Scale, const std::vector<float> &Base, int64_t m,
               HeadToken &T) {
  const int64_t K = S.width();
  const float *Xm = X.data() + m * K;
  double Squares = 0;
  for (int64_t k = 0; k < K; ++k)
    Squares += double(Xm[k]) * double(Xm[k]);
  T.Ms = Squares / double(K);
  T.R = reciprocalRms(T.Ms, Consts.RmsEps, RmsForm::Inside);
  T.U.assign(S.N, 0.0);
  T.Mix.assign(S.N, 0.0);
  T.Sig.assign(S.N, 0.0);
  T.Wgt.assign(S.N, 0.0);
  for (int j = 0; j < S.N; ++j) {
    double Sum = 0;
    for (int64_t k = 0; k < K; ++k)
      Sum += double(Xm[k]) * double(W[j * K + k]);
    T.U[j] = Sum;
    T.Mix[j] = Sum * T.R;
    double Z = T.Mix[j] * Scale + double(Base[j]);
    T.Sig[j] = 1.0 / (1.0 + std::exp(-Z));
    T.Wgt[j] = T.Sig[j] + double(Consts.PreEps);
  }
}

} // namespace

HeadOutputs headForwardRef(const StreamShape &S, const ContractConstants &Consts,
                           const std::vector<float> &X, const std::vector<float> &W,
                           const std::vector<float> &Scale, const std::vector<float> &Base) {
  HeadOutputs Out;
  Out.Y.assign(S.M * S.C, 0.0);
  Out.Wgt.assign(S.M * S.N, 0.0);
  parallelFor(
      S.M,
      [&](int64_t Begin, int64_t End) {
        HeadToken T;
        for (int64_t m = Begin; m < End; ++m) {
          headToken(S, Consts, X, W, Scale[0], Base, m, T);
          // y[c] = sum_j wgt[j]*x[j][c].
          for (int64_t c = 0; c < S.C; ++c) {
            double Sum = 0;
            for (int j = 0; j < S.N; ++j)
              Sum += T.Wgt[j] * double(X[S.index(m, j, c)]);
            Out.Y[m * S.C + c] = Sum;
          }
          for (int j = 0; j < S.N; ++j)
            Out.Wgt[m * S.N + j] = T.Wgt[j];
        }
      },
      referenceGrain(S.width() * (S.N + 2)));
  return Out;
}

HeadGrads headBackwardRef(const StreamShape &S, const ContractConstants &Consts,
                          const std::vector<float> &DY, const std::vector<float> &X,
                          const std::vector<float> &W, const std::vector<float> &Scale,
                          const std::vector<float> &Base, const std::vector<float> *DxIn) {
  const int n = S.N;
  const int64_t K = S.width();
  const double Sc = Scale[0];
  HeadGrads G;
  G.DX.assign(S.elements(), 0.0);
  // Per token: dz (n) for dbase, sum_j dz*mix for dscale, du (n) for dw.
  std::vector<double> Dz(S.M * n, 0.0), ScaleParts(S.M, 0.0), Du(S.M * n, 0.0);
  parallelFor(
      S.M,
      [&](int64_t Begin, int64_t End) {
        HeadToken T;
        for (int64_t m = Begin; m < End; ++m) {
          headToken(S, Consts, X, W, Sc, Base, m, T);
          double MsSum = 0;
          for (int j = 0; j < n; ++j) {
            // dwgt[j] = sum_c dy[c]*x[j][c]; dz = dwgt*s*(1-s).
            double Dwgt = 0;
            for (int64_t c = 0; c < S.C; ++c)
              Dwgt += double(DY[m * S.C + c]) * double(X[S.index(m, j, c)]);
            double DzJ = Dwgt * T.Sig[j] * (1 - T.Sig[j]);
            Dz[m * n + j] = DzJ;
            ScaleParts[m] += DzJ * T.Mix[j];
            Du[m * n + j] = DzJ * Sc * T.R;
            MsSum += DzJ * Sc * T.U[j];
          }
          // dms = -(1/2)(ms + rms_eps)^(-3/2) * sum_j dz[j]*scale*u[j].
          double Dms = reciprocalRmsSlope(T.Ms, Consts.RmsEps, RmsForm::Inside) * MsSum;
          // dx[j][c] = wgt[j]*dy[c] + sum_t du[t]*w[t][k] + dms*2*x[j][c]/K.
          for (int j = 0; j < n; ++j)
            for (int64_t c = 0; c < S.C; ++c) {
              int64_t I = S.index(m, j, c), k = I - m * K;
              double Sum = T.Wgt[j] * double(DY[m * S.C + c]);
              for (int t = 0; t < n; ++t)
                Sum += Du[m * n + t] * double(W[t * K + k]);
              G.DX[I] =
                  Sum + Dms * 2.0 * double(X[I]) / double(K) + (DxIn ? double((*DxIn)[I]) : 0.0);
            }
        }
      },
      referenceGrain(K * (2 * n + 3)));
  G.DBase = columnSums(Dz, S.M, n);
  G.DScale = columnSums(ScaleParts, S.M, 1);
  // dw[j][k] = sum_m du[m][j]*x[m][k]: each chunk owns columns k and walks tokens in order.
  G.DW.assign(n * K, 0.0);
  parallelFor(
      K,
      [&](int64_t Begin, int64_t End) {
        for (int64_t m = 0; m < S.M; ++m)
          for (int j = 0; j < n; ++j)
            for (int64_t k = Begin; k < End; ++k)
              G.DW[j * K + k] += Du[m * n + j] * double(X[m * K + k]);
      },
      referenceGrain(S.M * n));
  return G;
}

} // namespace mhcjit
