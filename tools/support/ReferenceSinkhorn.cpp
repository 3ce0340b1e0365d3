// mhcjit tool support: float64 reference of sinkhorn (SPEC.md 3), `log` and `softmax_eps`,
// forward and the exact backward, which recomputes the iterations of one token at a time.
#include "Parallel.h"
#include "Reference.h"

#include <algorithm>
#include <cmath>

namespace mhcjit {

namespace {

/// -logsumexp of Values[0..Count) taken with Stride, shifted by the max for stability.
double negLogSumExp(const double *Values, int Count, int Stride) {
  double Max = Values[0];
  for (int I = 1; I < Count; ++I)
    Max = std::max(Max, Values[I * Stride]);
  double Sum = 0;
  for (int I = 0; I < Count; ++I)
    Sum += std::exp(Values[I * Stride] - Max);
  return -(Max + std::log(Sum));
}

/// `log` on one token: U and V receive the potentials after iterations 0..T (row t holds u_t,
/// v_t; row 0 is 0), as (T+1) x n matrices.
void logPotentials(const float *L, int n, int T, std::vector<double> &U, std::vector<double> &V) {
  U.assign((T + 1) * n, 0.0);
  V.assign((T + 1) * n, 0.0);
  std::vector<double> Work(n * n);
  for (int t = 1; t <= T; ++t) {
    const double *VPrev = &V[(t - 1) * n];
    double *Ut = &U[t * n], *Vt = &V[t * n];
    // u[i] = -logsumexp_j(L[i][j] + v[j]).
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j)
        Work[i * n + j] = double(L[i * n + j]) + VPrev[j];
    for (int i = 0; i < n; ++i)
      Ut[i] = negLogSumExp(&Work[i * n], n, 1);
    // v[j] = -logsumexp_i(L[i][j] + u[i]).
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j)
        Work[i * n + j] = double(L[i * n + j]) + Ut[i];
    for (int j = 0; j < n; ++j)
      Vt[j] = negLogSumExp(&Work[j], n, n);
  }
}

/// The sums of P along Axis: 0 = column sums (over i, one per j), 1 = row sums (over j).
std::vector<double> axisSums(const std::vector<double> &P, int n, int Axis) {
  std::vector<double> Sums(n, 0.0);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      Sums[Axis == 0 ? j : i] += P[i * n + j];
  return Sums;
}

/// The axis of normalisation step s of softmax_eps: step 0 and every even step normalise
/// columns, odd steps rows (SPEC.md 3: column, then T-1 times row and column).
int stepAxis(int Step) { return Step % 2 == 0 ? 0 : 1; }

/// `softmax_eps` on one token: Soft receives the row softmax S, P the result; Steps (if given)
/// the matrix before each of the 2T-1 normalisation steps.
void softmaxEpsToken(const float *L, int n, int T, double Eps, std::vector<double> &Soft,
                     std::vector<double> &P, std::vector<std::vector<double>> *Steps) {
  Soft.assign(n * n, 0.0);
  for (int i = 0; i < n; ++i) {
    double Max = L[i * n];
    for (int j = 1; j < n; ++j)
      Max = std::max(Max, double(L[i * n + j]));
    double Sum = 0;
    for (int j = 0; j < n; ++j)
      Sum += Soft[i * n + j] = std::exp(double(L[i * n + j]) - Max);
    for (int j = 0; j < n; ++j)
      Soft[i * n + j] /= Sum;
  }
  // The eps is added after the softmax.
  P.resize(n * n);
  for (int I = 0; I < n * n; ++I)
    P[I] = Soft[I] + Eps;
  for (int Step = 0; Step < 2 * T - 1; ++Step) {
    if (Steps)
      Steps->push_back(P);
    int Axis = stepAxis(Step);
    std::vector<double> Sums = axisSums(P, n, Axis);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j)
        P[i * n + j] /= Sums[Axis == 0 ? j : i] + Eps;
  }
}

} // namespace

std::vector<double> sinkhornForwardRef(const StreamShape &S, const ContractConstants &Consts,
                                       const std::vector<float> &Logits) {
  const int n = S.N, T = Consts.SinkhornIters;
  std::vector<double> Res(S.M * n * n, 0.0);
  parallelFor(
      S.M,
      [&](int64_t Begin, int64_t End) {
        std::vector<double> U, V, Soft, P;
        for (int64_t m = Begin; m < End; ++m) {
          const float *L = Logits.data() + m * n * n;
          double *Out = Res.data() + m * n * n;
          if (Consts.Sinkhorn == SinkhornKind::Log) {
            logPotentials(L, n, T, U, V);
            // res[i][j] = exp(u[i] + L[i][j] + v[j]).
            for (int i = 0; i < n; ++i)
              for (int j = 0; j < n; ++j)
                Out[i * n + j] = std::exp(U[T * n + i] + double(L[i * n + j]) + V[T * n + j]);
          } else {
            softmaxEpsToken(L, n, T, Consts.SinkhornEps, Soft, P, nullptr);
            std::copy(P.begin(), P.end(), Out);
          }
        }
      },
      referenceGrain(4 * T * n * n));
  return Res;
}

std::vector<double> sinkhornBackwardRef(const StreamShape &S, const ContractConstants &Consts,
                                        const std::vector<float> &DRes,
                                        const std::vector<float> &Logits) {
  const int n = S.N, T = Consts.SinkhornIters;
  const double Eps = Consts.SinkhornEps;
  std::vector<double> DLogits(S.M * n * n, 0.0);
  parallelFor(
      S.M,
      [&](int64_t Begin, int64_t End) {
        std::vector<double> U, V, Soft, P, Du(n), Dv(n), Dy(n * n), Y(n * n);
        for (int64_t m = Begin; m < End; ++m) {
          const float *L = Logits.data() + m * n * n;
          const float *DR = DRes.data() + m * n * n;
          double *DL = DLogits.data() + m * n * n;
          if (Consts.Sinkhorn == SinkhornKind::Log) {
            logPotentials(L, n, T, U, V);
            auto expOf = [&](int i, int j, const double *Ut, const double *Vt) {
              return std::exp(double(L[i * n + j]) + Ut[i] + Vt[j]);
            };
            // G = dres*res; dL = G; du = sum_j G; dv = sum_i G.
            std::fill(Du.begin(), Du.end(), 0.0);
            std::fill(Dv.begin(), Dv.end(), 0.0);
            for (int i = 0; i < n; ++i)
              for (int j = 0; j < n; ++j) {
                double G = double(DR[i * n + j]) * expOf(i, j, &U[T * n], &V[T * n]);
                DL[i * n + j] = G;
                Du[i] += G;
                Dv[j] += G;
              }
            for (int t = T; t >= 1; --t) {
              const double *Ut = &U[t * n], *Vt = &V[t * n], *VPrev = &V[(t - 1) * n];
              // Through v_t: A_t = exp(L + u_t[i] + v_t[j]).
              for (int i = 0; i < n; ++i)
                for (int j = 0; j < n; ++j) {
                  double A = expOf(i, j, Ut, Vt);
                  DL[i * n + j] -= Dv[j] * A;
                  Du[i] -= Dv[j] * A;
                }
              // Through u_t: B_t = exp(L + u_t[i] + v_{t-1}[j]); dv becomes d/dv_{t-1}.
              std::fill(Dv.begin(), Dv.end(), 0.0);
              for (int i = 0; i < n; ++i)
                for (int j = 0; j < n; ++j) {
                  double B = expOf(i, j, Ut, VPrev);
                  DL[i * n + j] -= Du[i] * B;
                  Dv[j] -= Du[i] * B;
                }
              std::fill(Du.begin(), Du.end(), 0.0);
            }
            continue;
          }
          // softmax_eps: walk the normalisation steps backwards. A step Y = X/(s + eps) has
          // dX = (dY - sum_axis(dY*Y)) / (s + eps).
          std::vector<std::vector<double>> Steps;
          softmaxEpsToken(L, n, T, Eps, Soft, P, &Steps);
          for (int I = 0; I < n * n; ++I)
            Dy[I] = DR[I];
          for (int Step = 2 * T - 2; Step >= 0; --Step) {
            const std::vector<double> &X = Steps[Step];
            int Axis = stepAxis(Step);
            std::vector<double> Sums = axisSums(X, n, Axis);
            std::vector<double> Dots(n, 0.0);
            for (int i = 0; i < n; ++i)
              for (int j = 0; j < n; ++j) {
                int A = Axis == 0 ? j : i;
                Y[i * n + j] = X[i * n + j] / (Sums[A] + Eps);
                Dots[A] += Dy[i * n + j] * Y[i * n + j];
              }
            for (int i = 0; i < n; ++i)
              for (int j = 0; j < n; ++j) {
                int A = Axis == 0 ? j : i;
                Dy[i * n + j] = (Dy[i * n + j] - Dots[A]) / (Sums[A] + Eps);
              }
          }
          // The eps is a constant: dS = dP; dL = S*(dS - sum_j dS*S) per row.
          for (int i = 0; i < n; ++i) {
            double Dot = 0;
            for (int j = 0; j < n; ++j)
              Dot += Dy[i * n + j] * Soft[i * n + j];
            for (int j = 0; j < n; ++j)
              DL[i * n + j] = Soft[i * n + j] * (Dy[i * n + j] - Dot);
          }
        }
      },
      referenceGrain(8 * T * n * n));
  return DLogits;
}

} // namespace mhcjit
