// mhcjit tests: mhc-jit inspect and prewarm with --params (phi, gamma, bias in fp32 or the stream
// dtype). Each run is a child process with a scratch cache.
#include "TestSupport.h"
#include "ToolRunner.h"
#include "doctest/doctest.h"

#include <string>
#include <vector>

using namespace mhcjit;
using namespace mhcjit::test;

namespace {

std::vector<std::string> inspect(std::initializer_list<std::string> More) {
  std::vector<std::string> Args = {"inspect", "--n", "4", "--C", "7168", "--dtype", "bf16"};
  Args.insert(Args.end(), More.begin(), More.end());
  return Args;
}

#define CAPTURE_RUN(R)                                                                              \
  const std::string RunOut = (R).Out, RunErr = (R).Err;                                             \
  CAPTURE(RunOut);                                                                                  \
  CAPTURE(RunErr)

} // namespace

TEST_CASE("inspect --params stream renders project with the stream dtype as its parameter type") {
  TempDir Cache;
  RunResult Stream = runTool(inspect({"--op", "project", "--params", "stream", "--with-gamma"}), Cache.path());
  CAPTURE_RUN(Stream);
  REQUIRE(Stream.ExitCode == 0);
  CHECK(contains(Stream.Out, "mhc::project_fwd<4, 7168, mhc::bf16_t, mhc::bf16_t, "));
  CHECK(contains(Stream.Out, " params=stream "));
  RunResult Default = runTool(inspect({"--op", "project", "--dir", "bwd"}), Cache.path());
  REQUIRE(Default.ExitCode == 0);
  CHECK(contains(Default.Out, "mhc::project_bwd<4, 7168, mhc::bf16_t, float, "));
  CHECK(contains(Default.Out, " params=fp32 "));
}

TEST_CASE("inspect --params stream applies to expand_combine only with --with-bias") {
  TempDir Cache;
  RunResult Bias = runTool(inspect({"--op", "expand_combine", "--params", "stream", "--with-bias"}), Cache.path());
  CAPTURE_RUN(Bias);
  REQUIRE(Bias.ExitCode == 0);
  CHECK(contains(Bias.Out, "mhc::expand_combine_fwd<4, 7168, mhc::bf16_t, mhc::bf16_t, mhc::Layout::kSbcn, "));
  RunResult NoBias = runTool(inspect({"--op", "expand_combine", "--params", "stream"}), Cache.path());
  REQUIRE(NoBias.ExitCode == 0);
  CHECK(contains(NoBias.Out, "mhc::expand_combine_fwd<4, 7168, mhc::bf16_t, float, mhc::Layout::kSbcn, "));
  // ops without stream-dtype parameters ignore the option, as the runtime does
  RunResult Head = runTool(inspect({"--op", "head", "--params", "stream"}), Cache.path());
  REQUIRE(Head.ExitCode == 0);
  CHECK(contains(Head.Out, " params=fp32 "));
}

TEST_CASE("--params rejects a dtype name and two values where inspect needs one") {
  TempDir Cache;
  RunResult Bad = runTool(inspect({"--op", "project", "--params", "bf16"}), Cache.path());
  CAPTURE_RUN(Bad);
  CHECK(Bad.ExitCode != 0);
  CHECK(contains(Bad.Err, "--params=bf16 is not a valid value"));
  RunResult Two = runTool(inspect({"--op", "project", "--params", "fp32,stream"}), Cache.path());
  CHECK(Two.ExitCode != 0);
  CHECK(contains(Two.Err, "--params takes one value"));
}

TEST_CASE("prewarm --params fp32,stream compiles the stream-parameter variants once each") {
  TempDir Scratch;
  // expand_combine forward: no bias (the same kernel for both), bias fp32, bias bf16
  RunResult R = runTool({"prewarm", "--op", "expand_combine", "--dir", "fwd", "--n", "4", "--C", "64",
                         "--params", "fp32,stream", "--cache-dir", Scratch.sub("cache")},
                        Scratch.path());
  CAPTURE_RUN(R);
  REQUIRE(R.ExitCode == 0);
  CHECK(contains(R.Out, ": 3 kernels, 3 compiled, 0 already cached, 0 failed"));
}
