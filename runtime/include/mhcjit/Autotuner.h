// mhcjit runtime: timing every candidate tile of a spec on the GPU and picking the winner, for
// `mhc-jit tune` and for MHCJIT_AUTOTUNE=1 (tuning on first use inside the runtime).
#pragma once

#include "mhcjit/LaunchTimer.h"
#include "mhcjit/TuningDb.h"

#include "llvm/Support/Error.h"

#include <cstdint>
#include <vector>

namespace mhcjit {

/// Tokens the tuner times when none are given: enough blocks to fill any current GPU.
constexpr int64_t DefaultTuningTokens = 32768;

/// What tuning one spec measured.
struct TuneResult {
  TuningEntry Entry;                    ///< key (at M), winner, every candidate's median and spread
  std::vector<LaunchTiming> Timings;    ///< every candidate's full timing, in candidate order
  size_t WinnerIndex = 0;               ///< into Timings and Entry.Timings
  int64_t M = 0;                        ///< tokens timed
  double Seconds = 0;                   ///< wall time of the whole tuning, compilation included
};

/// Times every tile of tileCandidates(Base) at M tokens: each candidate is forced with a
/// ScopedTileOverride and launched through the op's ordinary C++ API on scratch tensors of
/// the tuner's own (scratchLaunch), timed by a LaunchTimer with Plan (the first warm-up also
/// compiles the kernel), and the winner is pickWinner()'s. Base is the op call's base spec, as
/// specFor() gives it (its tile is ignored). The entry's key is tuningKey(Base, device, M).
/// Synchronizes the context first. Errc::NoDevice without a GPU; Errc::InvalidArgument for
/// M < 1 or a spec that is not an op call's; a failed candidate fails the whole tuning.
llvm::Expected<TuneResult> tuneSpec(const KernelSpec &Base, int64_t M, TimingPlan Plan = TimingPlan());

/// The tile for a call of Base with M tokens under MHCJIT_AUTOTUNE=1, when the tuning DB has
/// no entry for it on Device: tunes Base once per process (later calls reuse the result; one
/// tuning at a time), at the call's M bucket capped at DefaultTuningTokens (any-M specs at
/// DefaultTuningTokens), stores the entry in the runtime's tuning DB file (merged on save) and
/// returns the winner. Without a DB path, or when saving fails, it warns and the result lives
/// in this process only. A tuning failure is an error (the caller falls back to the heuristic).
llvm::Expected<TileConfig> autotuneOnFirstUse(const KernelSpec &Base, const DeviceIdentity &Device, int64_t M);

} // namespace mhcjit
