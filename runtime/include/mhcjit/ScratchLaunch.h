// mhcjit runtime: any op call on device tensors of its own, ready to time. One launch path for
// `mhc-jit bench`, `mhc-jit tune` and MHCJIT_AUTOTUNE: none of them ever touches a caller's data.
#pragma once

#include "mhcjit/mhcjit.hpp"

#include "llvm/Support/Error.h"

#include <cuda.h>
#include <functional>
#include <map>
#include <string>

namespace mhcjit {

/// Device tensors by name, allocated at first use (and again when a larger size or another
/// dtype is asked for), filled with values in [0.25, 1) * Scale; freed on destruction.
class ScratchTensors {
public:
  ScratchTensors() = default;
  ScratchTensors(const ScratchTensors &) = delete;
  ScratchTensors &operator=(const ScratchTensors &) = delete;
  ~ScratchTensors();

  /// The tensor Name of at least Bytes bytes. A new tensor holds values of Type in
  /// [0.25, 1) * Scale (a stream tensor must get its stream dtype: fp32 words read as pairs of
  /// bf16 have random exponents, up to 1e38, and made data-dependent kernels take slow paths).
  llvm::Expected<void *> get(const std::string &Name, size_t Bytes, float Scale, DType Type = DType::FP32);
  /// Bytes allocated in all.
  size_t allocatedBytes() const;

private:
  struct Buffer {
    CUdeviceptr Pointer = 0;
    size_t Bytes = 0;
    DType Type = DType::FP32;
  };
  std::map<std::string, Buffer> Buffers;
};

/// One op call on scratch tensors.
struct ScratchLaunch {
  std::function<llvm::Error()> Launch; ///< one call of the op's C++ API on stream 0
  double MinimalBytes = 0;             ///< each input read once, each output written once
};

/// The call of Operation in direction Dir with M tokens and Config, on Scratch's tensors
/// (allocated here as needed): no optional inputs (gamma, bias), no dx accumulation. Its spec
/// is specFor(Config, Operation, Dir), so a ScopedTileOverride of that spec sets its tile.
/// The returned launch refers to Scratch, which must outlive it. Errc::InvalidArgument for
/// M < 1 or Op::ReduceRows (a helper kernel, not an op call).
llvm::Expected<ScratchLaunch> scratchLaunch(const MixConfig &Config, Op Operation, Direction Dir,
                                            int64_t M, ScratchTensors &Scratch);

} // namespace mhcjit
