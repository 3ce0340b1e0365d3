// mhcjit tests: the float64 references of SPEC.md. Every analytic backward against central
// differences of its forward, plus hand-computed cases, accumulation and batch consistency.
#include "Reference.h"

#include "doctest/doctest.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using namespace mhcjit;

namespace {

using Tensors = std::vector<std::vector<float>>;
using Results = std::vector<std::vector<double>>;

/// Seeded random test data.
class Random {
public:
  explicit Random(uint64_t Seed) : Gen(Seed) {}
  std::vector<float> normal(size_t Count, double Sd = 1.0) {
    std::normal_distribution<double> D(0.0, Sd);
    std::vector<float> V(Count);
    for (float &E : V)
      E = float(D(Gen));
    return V;
  }
  std::vector<float> uniform(size_t Count, double Lo, double Hi) {
    std::uniform_real_distribution<double> D(Lo, Hi);
    std::vector<float> V(Count);
    for (float &E : V)
      E = float(D(Gen));
    return V;
  }
  /// x (M, K) normal with rows scaled by 10^U(-Decades, 0), so that eps constants matter.
  std::vector<float> streams(int64_t M, int64_t K, double Decades) {
    std::vector<float> X = normal(M * K);
    std::vector<float> Exponent = uniform(M, -Decades, 0);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t k = 0; k < K; ++k)
        X[m * K + k] = float(X[m * K + k] * std::pow(10.0, Exponent[m]));
    return X;
  }

private:
  std::mt19937_64 Gen;
};

/// An op under test: Forward maps its inputs to its outputs; Backward gets one upstream
/// gradient per output and returns one gradient per input (empty where the input is absent).
struct OpUnderTest {
  std::function<Results(const Tensors &In)> Forward;
  std::function<Results(const Tensors &Up, const Tensors &In)> Backward;
};

double norm(const std::vector<double> &V) {
  double Sum = 0;
  for (double E : V)
    Sum += E * E;
  return std::sqrt(Sum);
}

/// Central differences of the loss sum_o sum_e Up[o][e]*Out[o][e] (whose output gradients are
/// Up) with respect to every element of input Which. The step is 1e-6 of max(|x|, Floor), Floor
/// being the rms of the input when negative; the divisor is the step the fp32 input really took.
/// Outputs are differenced element by element before weighting, so that large outputs the
/// element does not move add no rounding.
std::vector<double> numericGradient(const OpUnderTest &Op, Tensors In, const Tensors &Up,
                                    size_t Which, double Floor) {
  double Squares = 0;
  for (float V : In[Which])
    Squares += double(V) * double(V);
  if (Floor < 0)
    Floor = std::sqrt(Squares / double(In[Which].size()));
  std::vector<double> G(In[Which].size());
  for (size_t I = 0; I < G.size(); ++I) {
    const float X = In[Which][I];
    const double Scale = std::max(std::fabs(double(X)), Floor);
    const double Step = 1e-6 * (Scale > 0 ? Scale : 1.0);
    const float Plus = float(X + Step), Minus = float(X - Step);
    In[Which][I] = Plus;
    Results OutPlus = Op.Forward(In);
    In[Which][I] = Minus;
    Results OutMinus = Op.Forward(In);
    In[Which][I] = X;
    double Change = 0;
    for (size_t O = 0; O < OutPlus.size(); ++O)
      for (size_t E = 0; E < OutPlus[O].size(); ++E)
        Change += double(Up[O][E]) * (OutPlus[O][E] - OutMinus[O][E]);
    G[I] = Change / (double(Plus) - double(Minus));
  }
  return G;
}

/// ||Analytic - Numeric|| / ||Numeric||, with 0 when both are zero.
double gradientError(const std::vector<double> &Analytic, const std::vector<double> &Numeric) {
  REQUIRE(Analytic.size() == Numeric.size());
  std::vector<double> Diff(Analytic.size());
  for (size_t I = 0; I < Diff.size(); ++I)
    Diff[I] = Analytic[I] - Numeric[I];
  double D = norm(Diff), R = norm(Numeric);
  return D <= 1e-12 ? 0.0 : D / R;
}

/// Checks every gradient of Op at In against central differences of its forward, with random
/// upstream gradients. Names labels the inputs in failure messages; StepFloors replaces the
/// rms floor of the step for the inputs it names (values spanning decades, like ms).
void checkGradients(const OpUnderTest &Op, const Tensors &In, const std::vector<std::string> &Names,
                    Random &R, const std::map<std::string, double> &StepFloors = {},
                    double Tolerance = 1e-6) {
  Results Out = Op.Forward(In);
  Tensors Up;
  for (const std::vector<double> &O : Out)
    Up.push_back(R.normal(O.size()));
  Results Grads = Op.Backward(Up, In);
  REQUIRE(Grads.size() == In.size());
  REQUIRE(Names.size() == In.size());
  for (size_t I = 0; I < In.size(); ++I) {
    INFO("gradient of " << Names[I]);
    REQUIRE(Grads[I].size() == In[I].size());
    if (In[I].empty())
      continue;
    auto Floor = StepFloors.find(Names[I]);
    double Error = gradientError(
        Grads[I], numericGradient(Op, In, Up, I, Floor == StepFloors.end() ? -1.0 : Floor->second));
    CHECK(Error <= Tolerance);
  }
}

/// A float in the shortest readable form (1e-06, 0.3).
std::string number(double V) {
  std::ostringstream OS;
  OS << V;
  return OS.str();
}

/// A readable label of a test configuration.
std::string label(const StreamShape &S, const std::string &Extra = "") {
  std::ostringstream OS;
  OS << "M=" << S.M << " n=" << S.N << " C=" << S.C << (S.L == Layout::SBCN ? " sbcn" : " sbnc")
     << " " << Extra;
  return OS.str();
}

ContractConstants constantsWith(ContractKind Kind, SinkhornKind Sinkhorn, int Iters,
                                float SinkhornEps) {
  ContractConstants K = contractPreset(Kind);
  K.Sinkhorn = Sinkhorn;
  K.SinkhornIters = Iters;
  K.SinkhornEps = SinkhornEps;
  return K;
}

/// x of one token with stream j, column c holding Values[j][c], placed by the layout.
std::vector<float> placeStreams(const StreamShape &S, const std::vector<std::vector<float>> &V) {
  std::vector<float> X(S.elements());
  for (int j = 0; j < S.N; ++j)
    for (int64_t c = 0; c < S.C; ++c)
      X[S.index(0, j, c)] = V[j][c];
  return X;
}

const Layout Layouts[] = {Layout::SBCN, Layout::SBNC};

} // namespace

TEST_SUITE_BEGIN("reference");

// ---------------------------------------------------------------------------------------------
// Gradients against central differences.
// ---------------------------------------------------------------------------------------------

TEST_CASE("project backward matches central differences of project forward") {
  Random R(1);
  // The layout only changes what k means: x[m][k] is element m*K + k either way.
  for (Layout L : Layouts)
    for (int n = 1; n <= 4; ++n)
      for (int64_t C : {1, 3, 5})
        for (bool HasGamma : {false, true}) {
          StreamShape S{2, n, C, L};
          INFO(label(S, HasGamma ? "gamma" : "no gamma"));
          const int64_t K = S.width();
          OpUnderTest Op;
          Op.Forward = [&](const Tensors &In) {
            ProjectOutputs O = projectForwardRef(S, In[0], In[1], In[2]);
            return Results{O.H, O.Ms};
          };
          Op.Backward = [&](const Tensors &Up, const Tensors &In) {
            ProjectGrads G = projectBackwardRef(S, Up[0], Up[1], In[0], In[1], In[2]);
            return Results{G.DX, G.DPhi, G.DGamma};
          };
          Tensors In{R.streams(S.M, K, 2), R.normal(S.mixes() * K, 1 / std::sqrt(double(K))),
                     HasGamma ? R.uniform(K, 0.5, 1.5) : std::vector<float>()};
          checkGradients(Op, In, {"x", "phi", "gamma"}, R);
        }
}

TEST_CASE("scale backward matches central differences for both rms forms and every contract") {
  Random R(2);
  for (ContractKind Kind : {ContractKind::TE, ContractKind::DeepSeek, ContractKind::Megatron})
    for (float RmsEps : {0.0f, 0.3f})
      for (int n = 1; n <= 4; ++n) {
        ContractConstants K = contractPreset(Kind);
        if (RmsEps != 0)
          K.RmsEps = RmsEps; // large enough that the two forms differ visibly
        K.PreEps = 0.01f;
        K.PostMult = 1.5f;
        StreamShape S{3, n, 1, Layout::SBCN};
        INFO(label(S, contractName(Kind).str() + " rms_eps=" + number(K.RmsEps)));
        OpUnderTest Op;
        Op.Forward = [&](const Tensors &In) {
          ScaleOutputs O = scaleForwardRef(S, K, In[0], In[1], In[2], In[3]);
          return Results{O.Pre, O.Post, O.Logits};
        };
        Op.Backward = [&](const Tensors &Up, const Tensors &In) {
          ScaleGrads G = scaleBackwardRef(S, K, Up[0], Up[1], Up[2], In[0], In[1], In[2], In[3]);
          return Results{G.DH, G.DMs, G.DAlpha, G.DBeta};
        };
        // ms spans tiny (below rms_eps) to order one.
        std::vector<float> Ms = {1e-8f, 0.02f, 1.7f};
        Tensors In{R.normal(S.M * S.mixes()), Ms, R.uniform(3, 0.5, 1.5), R.normal(S.mixes(), 0.7)};
        // Steps in ms relative to ms + rms_eps (inside) or to ms (outside, where sqrt(ms) bends).
        double MsFloor = K.Rms == RmsForm::Inside ? double(K.RmsEps) : 0.0;
        checkGradients(Op, In, {"H", "ms", "alpha", "beta"}, R, {{"ms", MsFloor}});
      }
}

TEST_CASE("sinkhorn backward matches central differences for both kinds and T in 1, 3, 20") {
  Random R(3);
  for (SinkhornKind Kind : {SinkhornKind::Log, SinkhornKind::SoftmaxEps})
    for (float Eps : {1e-6f, 0.1f})
      for (int T : {1, 3, 20})
        for (int n = 1; n <= 4; ++n) {
          if (Kind == SinkhornKind::Log && Eps != 1e-6f)
            continue; // log has no eps
          ContractConstants K = constantsWith(ContractKind::DeepSeek, Kind, T, Eps);
          StreamShape S{2, n, 1, Layout::SBCN};
          INFO(label(S,
                     sinkhornName(Kind).str() + " T=" + std::to_string(T) + " eps=" + number(Eps)));
          OpUnderTest Op;
          Op.Forward = [&](const Tensors &In) { return Results{sinkhornForwardRef(S, K, In[0])}; };
          Op.Backward = [&](const Tensors &Up, const Tensors &In) {
            return Results{sinkhornBackwardRef(S, K, Up[0], In[0])};
          };
          checkGradients(Op, {R.normal(S.M * n * n, 1.5)}, {"logits"}, R);
        }
}

TEST_CASE("aggregate backward matches central differences in both layouts") {
  Random R(4);
  for (Layout L : Layouts)
    for (int n = 1; n <= 4; ++n)
      for (int64_t C : {1, 3, 5}) {
        StreamShape S{2, n, C, L};
        INFO(label(S));
        OpUnderTest Op;
        Op.Forward = [&](const Tensors &In) {
          return Results{aggregateForwardRef(S, In[0], In[1])};
        };
        Op.Backward = [&](const Tensors &Up, const Tensors &In) {
          Results G(2);
          aggregateBackwardRef(S, Up[0], In[0], In[1], nullptr, G[0], G[1]);
          return G;
        };
        checkGradients(Op, {R.normal(S.elements()), R.uniform(S.M * n, 0, 1)}, {"x", "pre"}, R);
      }
}

TEST_CASE("expand_combine backward matches central differences with and without bias") {
  Random R(5);
  for (Layout L : Layouts)
    for (int n = 1; n <= 4; ++n)
      for (int64_t C : {1, 3, 5})
        for (bool HasBias : {false, true}) {
          StreamShape S{2, n, C, L};
          INFO(label(S, HasBias ? "bias" : "no bias"));
          OpUnderTest Op;
          Op.Forward = [&](const Tensors &In) {
            return Results{expandCombineForwardRef(S, In[0], In[1], In[2], In[3], In[4])};
          };
          Op.Backward = [&](const Tensors &Up, const Tensors &In) {
            ExpandCombineGrads G =
                expandCombineBackwardRef(S, Up[0], In[0], In[1], In[2], In[3], In[4]);
            return Results{G.DF, G.DBias, G.DPost, G.DX, G.DRes};
          };
          Tensors In{R.normal(S.M * C), HasBias ? R.normal(C, 0.5) : std::vector<float>(),
                     R.uniform(S.M * n, 0, 2), R.normal(S.elements()),
                     R.uniform(S.M * n * n, 0, 1)};
          checkGradients(Op, In, {"f", "bias", "post", "x", "res"}, R);
        }
}

TEST_CASE("expand and contract backwards match central differences in both layouts") {
  Random R(6);
  for (Layout L : Layouts)
    for (int n = 1; n <= 4; ++n)
      for (int64_t C : {1, 3, 5}) {
        StreamShape S{2, n, C, L};
        INFO(label(S));
        OpUnderTest Expand, Contract;
        Expand.Forward = [&](const Tensors &In) { return Results{expandForwardRef(S, In[0])}; };
        Expand.Backward = [&](const Tensors &Up, const Tensors &) {
          return Results{expandBackwardRef(S, Up[0])};
        };
        Contract.Forward = [&](const Tensors &In) { return Results{contractForwardRef(S, In[0])}; };
        Contract.Backward = [&](const Tensors &Up, const Tensors &) {
          return Results{contractBackwardRef(S, Up[0])};
        };
        checkGradients(Expand, {R.normal(S.M * C)}, {"y"}, R);
        checkGradients(Contract, {R.normal(S.elements())}, {"x"}, R);
      }
}

TEST_CASE("head backward matches central differences in both layouts") {
  Random R(7);
  for (Layout L : Layouts)
    for (float RmsEps : {1e-6f, 0.3f})
      for (int n = 1; n <= 4; ++n)
        for (int64_t C : {1, 3, 5}) {
          ContractConstants K = contractPreset(ContractKind::DeepSeek);
          K.RmsEps = RmsEps;
          StreamShape S{2, n, C, L};
          INFO(label(S, "rms_eps=" + number(RmsEps)));
          const int64_t Width = S.width();
          OpUnderTest Op;
          Op.Forward = [&](const Tensors &In) {
            HeadOutputs O = headForwardRef(S, K, In[0], In[1], In[2], In[3]);
            return Results{O.Y};
          };
          Op.Backward = [&](const Tensors &Up, const Tensors &In) {
            HeadGrads G = headBackwardRef(S, K, Up[0], In[0], In[1], In[2], In[3]);
            return Results{G.DX, G.DW, G.DScale, G.DBase};
          };
          Tensors In{R.streams(S.M, Width, 2), R.normal(n * Width, 1 / std::sqrt(double(Width))),
                     R.uniform(1, 0.5, 1.5), R.normal(n, 0.7)};
          checkGradients(Op, In, {"x", "w", "scale", "base"}, R);
        }
}

// ---------------------------------------------------------------------------------------------
// Hand-computed cases.
// ---------------------------------------------------------------------------------------------

TEST_CASE("aggregate of two small streams is the pre-weighted sum in both layouts") {
  for (Layout L : Layouts) {
    StreamShape S{1, 2, 2, L};
    std::vector<float> X = placeStreams(S, {{1, 2}, {3, 4}});
    std::vector<double> Y = aggregateForwardRef(S, X, {0.5f, 0.25f});
    CHECK(Y == std::vector<double>{1.25, 2.0});
    std::vector<double> DX, DPre;
    aggregateBackwardRef(S, {1, -2}, X, {0.5f, 0.25f}, nullptr, DX, DPre);
    CHECK(DPre == std::vector<double>{1 - 4, 3 - 8});
    CHECK(DX[S.index(0, 1, 1)] == -0.5);
  }
}

TEST_CASE("project of a hand-sized token gives H with gamma and ms without it") {
  StreamShape S{1, 1, 2, Layout::SBCN}; // K = 2, N = 3
  std::vector<float> X = {1, 2}, Phi = {1, 0, 0, 1, 1, 1}, Gamma = {2, 3};
  ProjectOutputs O = projectForwardRef(S, X, Phi, Gamma);
  CHECK(O.H == std::vector<double>{2, 6, 8});
  CHECK(O.Ms == std::vector<double>{2.5});
  CHECK(projectForwardRef(S, X, Phi, {}).H == std::vector<double>{1, 2, 3});
  ProjectGrads G = projectBackwardRef(S, {1, 0, 0}, {0}, X, Phi, Gamma);
  CHECK(G.DX == std::vector<double>{2, 0});
  CHECK(G.DGamma == std::vector<double>{1, 0});
  CHECK(projectBackwardRef(S, {1, 0, 0}, {0}, X, Phi, {}).DGamma.empty());
}

TEST_CASE("scale uses the rms form of the contract and sets dms to 0 where ms is 0 outside") {
  StreamShape S{1, 1, 1, Layout::SBCN}; // N = 3: pre, post, one logit
  ContractConstants K = contractPreset(ContractKind::Megatron);
  K.RmsEps = 0.25f;
  std::vector<float> H = {2, -2, 3}, Alpha = {1, 1, 2}, Beta = {0, 0.5f, 1};
  auto sigmoid = [](double V) { return 1 / (1 + std::exp(-V)); };
  for (RmsForm Form : {RmsForm::Inside, RmsForm::Outside}) {
    K.Rms = Form;
    double R = Form == RmsForm::Inside ? 1 / std::sqrt(4.25) : 1 / 2.25;
    ScaleOutputs O = scaleForwardRef(S, K, H, {4}, Alpha, Beta);
    CHECK(O.Pre[0] == doctest::Approx(sigmoid(2 * R) + double(K.PreEps)).epsilon(1e-15));
    CHECK(O.Post[0] == doctest::Approx(2 * sigmoid(-2 * R + 0.5)).epsilon(1e-15));
    CHECK(O.Logits[0] == doctest::Approx(6 * R + 1).epsilon(1e-15));
  }
  K.Rms = RmsForm::Outside;
  ScaleGrads G = scaleBackwardRef(S, K, {1}, {1}, {1}, H, {0}, Alpha, Beta);
  CHECK(G.DMs[0] == 0);
  CHECK(G.DH[2] == doctest::Approx(2 / 0.25));
}

TEST_CASE("log sinkhorn column sums are 1 after every T and rows converge by T = 20") {
  Random R(8);
  for (int n = 2; n <= 8; ++n)
    for (int T : {1, 3, 20}) {
      ContractConstants K = constantsWith(ContractKind::TE, SinkhornKind::Log, T, 0);
      StreamShape S{4, n, 1, Layout::SBCN};
      INFO(label(S, "T=" + std::to_string(T)));
      std::vector<double> Res = sinkhornForwardRef(S, K, R.normal(S.M * n * n));
      for (int64_t m = 0; m < S.M; ++m)
        for (int j = 0; j < n; ++j) {
          double Col = 0, Row = 0;
          for (int i = 0; i < n; ++i) {
            Col += Res[(m * n + i) * n + j];
            Row += Res[(m * n + j) * n + i];
          }
          CHECK(std::fabs(Col - 1) <= 1e-14);
          if (T == 20)
            CHECK(std::fabs(Row - 1) <= 1e-3);
        }
    }
}

TEST_CASE("log sinkhorn with one iteration gives the hand-computed 2x2 result") {
  // Rows of exp(L) = [[1, 3], [1, 1]] normalised: [[1/4, 3/4], [1/2, 1/2]]; then columns.
  ContractConstants K = constantsWith(ContractKind::TE, SinkhornKind::Log, 1, 0);
  std::vector<double> Res =
      sinkhornForwardRef({1, 2, 1, Layout::SBCN}, K, {0, float(std::log(3.0)), 0, 0});
  const double Expected[] = {1.0 / 3, 3.0 / 5, 2.0 / 3, 2.0 / 5};
  for (int I = 0; I < 4; ++I)
    CHECK(Res[I] == doctest::Approx(Expected[I]).epsilon(1e-7));
}

TEST_CASE("softmax_eps sinkhorn gives the hand-computed 2x2 results for T = 1 and 2") {
  // softmax rows [[1/4, 3/4], [1/2, 1/2]], + eps 1/4 -> [[1/2, 1], [3/4, 3/4]].
  // T = 1: columns / (sum + 1/4) -> [[1/3, 1/2], [1/2, 3/8]].
  // T = 2: rows / (13/12, 9/8), columns / (469/468, 163/156).
  StreamShape S{1, 2, 1, Layout::SBCN};
  std::vector<float> L = {0, float(std::log(3.0)), 0, 0};
  std::vector<double> One = sinkhornForwardRef(
      S, constantsWith(ContractKind::DeepSeek, SinkhornKind::SoftmaxEps, 1, 0.25f), L);
  std::vector<double> Two = sinkhornForwardRef(
      S, constantsWith(ContractKind::DeepSeek, SinkhornKind::SoftmaxEps, 2, 0.25f), L);
  const double ExpectedOne[] = {1.0 / 3, 1.0 / 2, 1.0 / 2, 3.0 / 8};
  const double ExpectedTwo[] = {144.0 / 469, 72.0 / 163, 208.0 / 469, 52.0 / 163};
  for (int I = 0; I < 4; ++I) {
    CHECK(One[I] == doctest::Approx(ExpectedOne[I]).epsilon(1e-7));
    CHECK(Two[I] == doctest::Approx(ExpectedTwo[I]).epsilon(1e-7));
  }
}

TEST_CASE("expand_combine contracts res over its first index (non-symmetric res, n = 3)") {
  for (Layout L : Layouts) {
    StreamShape S{1, 3, 2, L};
    // Column 0 of the streams is (1, 10, 100); column 1 is its double.
    std::vector<float> X = placeStreams(S, {{1, 2}, {10, 20}, {100, 200}});
    std::vector<float> Res = {1, 2, 3, 4, 5, 6, 7, 8, 9}, Post = {1, 2, 3};
    std::vector<float> F = {0.5f, 0}, Bias = {0.25f, 0};
    std::vector<double> Out = expandCombineForwardRef(S, F, Bias, Post, X, Res);
    // sum_i res[i][j]*x[i] = (741, 852, 963); the transpose would give (321, 654, 987).
    const double Expected[] = {741 + 0.75, 852 + 1.5, 963 + 2.25};
    for (int j = 0; j < 3; ++j) {
      CHECK(Out[S.index(0, j, 0)] == Expected[j]);
      CHECK(Out[S.index(0, j, 1)] == 2 * (Expected[j] - 0.75 * (j + 1)));
    }
    // dx[i] = sum_j res[i][j]*dx'[j]: with dx' = (1, 10, 100) in column 0, dx = (321, 654, 987).
    std::vector<float> DOut = placeStreams(S, {{1, 0}, {10, 0}, {100, 0}});
    ExpandCombineGrads G = expandCombineBackwardRef(S, DOut, F, Bias, Post, X, Res);
    CHECK(G.DX[S.index(0, 0, 0)] == 321);
    CHECK(G.DX[S.index(0, 1, 0)] == 654);
    CHECK(G.DX[S.index(0, 2, 0)] == 987);
    CHECK(G.DRes[0 * 3 + 2] == 1 * 100); // x[0] * dx'[2]
    CHECK(G.DRes[2 * 3 + 0] == 100 * 1); // x[2] * dx'[0]
    CHECK(G.DRes[1 * 3 + 2] == 10 * 100);
    CHECK(G.DBias == std::vector<double>{1 + 20 + 300, 0});
    CHECK(expandCombineBackwardRef(S, DOut, F, {}, Post, X, Res).DBias.empty());
  }
}

TEST_CASE("expand copies y to every stream and contract averages the streams") {
  for (Layout L : Layouts) {
    StreamShape S{1, 2, 2, L};
    std::vector<double> X = expandForwardRef(S, {3, 5});
    CHECK(X[S.index(0, 0, 1)] == 5);
    CHECK(X[S.index(0, 1, 1)] == 5);
    CHECK(X[S.index(0, 1, 0)] == 3);
    std::vector<float> Streams = placeStreams(S, {{1, 2}, {3, 8}});
    CHECK(contractForwardRef(S, Streams) == std::vector<double>{2, 5});
    CHECK(expandBackwardRef(S, Streams) == std::vector<double>{4, 10});
    CHECK(contractBackwardRef(S, {4, 6})[S.index(0, 1, 1)] == 3);
  }
}

TEST_CASE("head with zero w weighs the streams by sigmoid(base) + pre_eps, inside form always") {
  Random R(9);
  for (Layout L : Layouts) {
    StreamShape S{2, 3, 4, L};
    ContractConstants K = contractPreset(ContractKind::DeepSeek);
    std::vector<float> X = R.normal(S.elements()), Base = {-1, 0, 2};
    HeadOutputs O = headForwardRef(S, K, X, std::vector<float>(3 * S.width(), 0.0f), {1.5f}, Base);
    for (int64_t m = 0; m < S.M; ++m)
      for (int j = 0; j < 3; ++j)
        CHECK(O.Wgt[m * 3 + j] ==
              doctest::Approx(1 / (1 + std::exp(-double(Base[j]))) + double(K.PreEps))
                  .epsilon(1e-15));
    // The rms form of the contract does not reach head.
    std::vector<float> W = R.normal(3 * S.width());
    K.RmsEps = 0.3f;
    HeadOutputs Inside = headForwardRef(S, K, X, W, {1.5f}, Base);
    K.Rms = RmsForm::Outside;
    HeadOutputs Outside = headForwardRef(S, K, X, W, {1.5f}, Base);
    CHECK(Inside.Y == Outside.Y);
  }
}

// ---------------------------------------------------------------------------------------------
// Accumulation and batches.
// ---------------------------------------------------------------------------------------------

TEST_CASE("backwards with a caller's dx buffer add exactly that buffer") {
  Random R(10);
  for (Layout L : Layouts) {
    StreamShape S{3, 4, 5, L};
    ContractConstants K = contractPreset(ContractKind::DeepSeek);
    std::vector<float> X = R.normal(S.elements()), DxIn = R.normal(S.elements());
    auto checkAdds = [&](const std::vector<double> &Without, const std::vector<double> &With) {
      REQUIRE(With.size() == DxIn.size());
      for (size_t I = 0; I < With.size(); ++I)
        CHECK(With[I] == Without[I] + double(DxIn[I]));
    };
    // project
    std::vector<float> DH = R.normal(S.M * S.mixes()), DMs = R.normal(S.M);
    std::vector<float> Phi = R.normal(S.mixes() * S.width()), Gamma = R.normal(S.width());
    checkAdds(projectBackwardRef(S, DH, DMs, X, Phi, Gamma).DX,
              projectBackwardRef(S, DH, DMs, X, Phi, Gamma, &DxIn).DX);
    // aggregate
    std::vector<float> DY = R.normal(S.M * S.C), Pre = R.normal(S.M * S.N);
    std::vector<double> DX0, DX1, DPre;
    aggregateBackwardRef(S, DY, X, Pre, nullptr, DX0, DPre);
    aggregateBackwardRef(S, DY, X, Pre, &DxIn, DX1, DPre);
    checkAdds(DX0, DX1);
    // expand_combine
    std::vector<float> DOut = R.normal(S.elements()), F = R.normal(S.M * S.C);
    std::vector<float> Post = R.normal(S.M * S.N), Res = R.normal(S.M * S.N * S.N);
    checkAdds(expandCombineBackwardRef(S, DOut, F, {}, Post, X, Res).DX,
              expandCombineBackwardRef(S, DOut, F, {}, Post, X, Res, &DxIn).DX);
    // contract, head
    checkAdds(contractBackwardRef(S, DY), contractBackwardRef(S, DY, &DxIn));
    std::vector<float> W = R.normal(S.N * S.width()), Base = R.normal(S.N);
    checkAdds(headBackwardRef(S, K, DY, X, W, {1.2f}, Base).DX,
              headBackwardRef(S, K, DY, X, W, {1.2f}, Base, &DxIn).DX);
  }
}

TEST_CASE("over many tokens, outputs match single tokens and parameter gradients their sums") {
  Random R(11);
  const int n = 4;
  const int64_t C = 8, M = 1500;
  StreamShape S{M, n, C, Layout::SBCN};
  StreamShape One{1, n, C, Layout::SBCN};
  const int64_t K = S.width();
  const int N = S.mixes();
  ContractConstants Consts = contractPreset(ContractKind::Megatron);
  auto token = [](const std::vector<float> &V, int64_t m, int64_t Width) {
    return std::vector<float>(V.begin() + m * Width, V.begin() + (m + 1) * Width);
  };
  auto addTo = [](std::vector<double> &Sum, const std::vector<double> &V) {
    Sum.resize(V.size(), 0.0);
    for (size_t I = 0; I < V.size(); ++I)
      Sum[I] += V[I];
  };
  auto close = [](const std::vector<double> &A, const std::vector<double> &B) {
    return A.size() == B.size() && gradientError(A, B) <= 1e-12;
  };
  std::vector<float> X = R.streams(M, K, 4), Phi = R.normal(N * K, 1 / std::sqrt(double(K)));
  std::vector<float> Gamma = R.uniform(K, 0.5, 1.5), DH = R.normal(M * N), DMs = R.normal(M);
  std::vector<float> Alpha = R.uniform(3, 0.5, 1.5), Beta = R.normal(N, 0.7);
  std::vector<float> Logits = R.normal(M * n * n), DY = R.normal(M * C);
  std::vector<float> W = R.normal(n * K, 0.2), Base = R.normal(n), Bias = R.normal(C);
  std::vector<float> Post = R.uniform(M * n, 0, 2), F = R.normal(M * C);
  std::vector<float> DOut = R.normal(S.elements());

  ProjectOutputs PF = projectForwardRef(S, X, Phi, Gamma);
  ProjectGrads PB = projectBackwardRef(S, DH, DMs, X, Phi, Gamma);
  std::vector<float> Ms(PF.Ms.begin(), PF.Ms.end()), H(PF.H.begin(), PF.H.end());
  std::vector<float> DPre = R.normal(M * n), DPost = R.normal(M * n);
  ScaleGrads ScB = scaleBackwardRef(S, Consts, DPre, DPost, Logits, H, Ms, Alpha, Beta);
  std::vector<double> Res = sinkhornForwardRef(S, Consts, Logits);
  std::vector<float> ResF(Res.begin(), Res.end());
  ExpandCombineGrads EB = expandCombineBackwardRef(S, DOut, F, Bias, Post, X, ResF);
  HeadGrads HB = headBackwardRef(S, Consts, DY, X, W, {1.3f}, Base);

  std::vector<double> DPhi, DGamma, DAlpha, DBeta, DBias, DW, DScale, DBase;
  for (int64_t m = 0; m < M; ++m) {
    std::vector<float> Xm = token(X, m, K);
    if (m % 97 == 0) {
      ProjectOutputs P1 = projectForwardRef(One, Xm, Phi, Gamma);
      CHECK(P1.H == std::vector<double>(PF.H.begin() + m * N, PF.H.begin() + (m + 1) * N));
      std::vector<double> R1 = sinkhornForwardRef(One, Consts, token(Logits, m, n * n));
      CHECK(R1 == std::vector<double>(Res.begin() + m * n * n, Res.begin() + (m + 1) * n * n));
    }
    ProjectGrads P1 = projectBackwardRef(One, token(DH, m, N), token(DMs, m, 1), Xm, Phi, Gamma);
    addTo(DPhi, P1.DPhi);
    addTo(DGamma, P1.DGamma);
    ScaleGrads S1 =
        scaleBackwardRef(One, Consts, token(DPre, m, n), token(DPost, m, n),
                         token(Logits, m, n * n), token(H, m, N), token(Ms, m, 1), Alpha, Beta);
    addTo(DAlpha, S1.DAlpha);
    addTo(DBeta, S1.DBeta);
    addTo(DBias, expandCombineBackwardRef(One, token(DOut, m, n * C), token(F, m, C), Bias,
                                          token(Post, m, n), Xm, token(ResF, m, n * n))
                     .DBias);
    HeadGrads H1 = headBackwardRef(One, Consts, token(DY, m, C), Xm, W, {1.3f}, Base);
    addTo(DW, H1.DW);
    addTo(DScale, H1.DScale);
    addTo(DBase, H1.DBase);
  }
  CHECK(close(PB.DPhi, DPhi));
  CHECK(close(PB.DGamma, DGamma));
  CHECK(close(ScB.DAlpha, DAlpha));
  CHECK(close(ScB.DBeta, DBeta));
  CHECK(close(EB.DBias, DBias));
  CHECK(close(HB.DW, DW));
  CHECK(close(HB.DScale, DScale));
  CHECK(close(HB.DBase, DBase));
  // Reproducible: a second run gives the same bits.
  CHECK(projectBackwardRef(S, DH, DMs, X, Phi, Gamma).DPhi == PB.DPhi);
  CHECK(headBackwardRef(S, Consts, DY, X, W, {1.3f}, Base).DW == HB.DW);
}

TEST_SUITE_END();

TEST_CASE("relativeError measures against the reference, or against a magnitude where one is given") {
  const std::vector<double> Ref = {3.0, -4.0};
  CHECK(relativeError({3.0f, -4.0f}, Ref) == 0.0);
  CHECK(relativeError({3.0f, -3.0f}, Ref) == doctest::Approx(0.2)); // ||(0, 1)|| / ||(3, -4)||
  // a cancelling sum: reference 0.1 from terms of size 10, error 0.01
  const std::vector<double> Sum = {0.1}, Terms = {10.0};
  CHECK(relativeError({0.11f}, Sum) == doctest::Approx(0.1).epsilon(1e-5));
  CHECK(relativeError({0.11f}, Sum, 0, &Terms) == doctest::Approx(1e-3).epsilon(1e-5));
  CHECK(std::isinf(relativeError({NAN}, Sum, 0, &Terms)));
  const std::vector<double> WrongSize = {1.0, 2.0};
  CHECK(std::isinf(relativeError({0.1f}, Sum, 0, &WrongSize)));
}

TEST_CASE("scale's backward reference gives the magnitudes of its cancelling sums") {
  const StreamShape S{2, 2, 1, Layout::SBCN};
  const int N = S.mixes();
  Random R(41);
  const ContractConstants Consts = contractPreset(ContractKind::TE);
  std::vector<float> H = R.normal(S.M * N), Ms = {0.5f, 2.0f}, Alpha = {0.7f, 1.1f, 1.3f}, Beta = R.normal(N);
  std::vector<float> DPre = R.normal(S.M * S.N), DPost = R.normal(S.M * S.N), DLogits = R.normal(S.M * S.N * S.N);
  ScaleGrads G = scaleBackwardRef(S, Consts, DPre, DPost, DLogits, H, Ms, Alpha, Beta);
  REQUIRE(G.DMsMagnitude.size() == size_t(S.M));
  REQUIRE(G.DAlphaMagnitude.size() == 3);
  for (int64_t m = 0; m < S.M; ++m)
    CHECK(G.DMsMagnitude[m] >= std::fabs(G.DMs[m]));
  for (int g = 0; g < 3; ++g)
    CHECK(G.DAlphaMagnitude[g] >= std::fabs(G.DAlpha[g]));
  // with every term of one sign the magnitudes are the sums themselves: dlogits 0 leaves pre and
  // post terms; make them positive through positive dpre, dpost and H
  std::vector<float> Pos(S.M * N, 0.5f), Ones(S.M * S.N, 1.0f), Zeros(S.M * S.N * S.N, 0.0f);
  ScaleGrads P = scaleBackwardRef(S, Consts, Ones, Ones, Zeros, Pos, Ms, Alpha, Beta);
  for (int64_t m = 0; m < S.M; ++m)
    CHECK(P.DMsMagnitude[m] == doctest::Approx(std::fabs(P.DMs[m])));
  CHECK(P.DAlphaMagnitude[0] == doctest::Approx(P.DAlpha[0]));
}
