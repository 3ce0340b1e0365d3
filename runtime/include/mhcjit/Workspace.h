// mhcjit runtime: device scratch memory for per-block partial sums, one buffer per (context, stream).
#pragma once

#include "llvm/Support/Error.h"

#include <cuda.h>
#include <cstddef>

namespace mhcjit {

/// At least Bytes of device memory reserved for work on Stream in the current context, valid
/// until the next call for the same stream. Calls on one stream are ordered, so reuse is safe;
/// other streams get their own buffers. Growing frees the old buffer (cuMemFree synchronises).
llvm::Expected<float *> streamWorkspace(CUstream Stream, size_t Bytes);

} // namespace mhcjit
