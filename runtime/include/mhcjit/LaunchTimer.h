// mhcjit runtime: timing a launch on the GPU the way the bench and the autotuner do: CUDA events
// around each repetition, the L2 cache flushed before each, the median after warm-ups.
#pragma once

#include "llvm/Support/Error.h"

#include <cuda.h>
#include <functional>
#include <vector>

namespace mhcjit {

/// How many repetitions a timing runs. The defaults are `mhc-jit bench`'s and the tuner's.
struct TimingPlan {
  int WarmUps = 3;  ///< untimed runs first (they also compile and load the kernels)
  int Repeats = 25; ///< timed runs, each after an L2 flush; >= 1
};

/// One launch's timings, in milliseconds.
struct LaunchTiming {
  double MedianMs = 0, MinMs = 0, MaxMs = 0;
  std::vector<double> SamplesMs; ///< every timed run, sorted ascending
  double spreadMs() const { return MaxMs - MinMs; }
  /// The third quartile minus the first: the noise of a typical run, unmoved by one outlier.
  double quartileSpreadMs() const {
    return SamplesMs.empty() ? 0.0 : SamplesMs[SamplesMs.size() * 3 / 4] - SamplesMs[SamplesMs.size() / 4];
  }
};

/// Times launches on the current context's legacy default stream. Owns two events and a
/// 256 MiB flush buffer (larger than the L2 of any current GPU), released on destruction.
class LaunchTimer {
public:
  /// Errc::NoDevice without a GPU; a CUDA error when the flush buffer cannot be allocated.
  static llvm::Expected<LaunchTimer> create(TimingPlan Plan = TimingPlan());
  LaunchTimer(LaunchTimer &&O) noexcept;
  LaunchTimer &operator=(LaunchTimer &&) = delete;
  LaunchTimer(const LaunchTimer &) = delete;
  ~LaunchTimer();

  /// Runs Launch Plan.WarmUps + Plan.Repeats times; before each, the flush buffer is rewritten
  /// (a memset that evicts the L2), and each timed run is bracketed by events on stream 0.
  /// Launch must enqueue its work on the legacy default stream (a null CUstream).
  llvm::Expected<LaunchTiming> time(const std::function<llvm::Error()> &Launch);

  const TimingPlan &plan() const { return Plan; }

private:
  LaunchTimer(TimingPlan Plan) : Plan(Plan) {}
  TimingPlan Plan;
  CUevent Start = nullptr, Stop = nullptr;
  CUdeviceptr Flush = 0;
  size_t FlushBytes = 0;
};

} // namespace mhcjit
