// mhc-jit bench: the op timing machinery behind `mhc-jit bench` (see OpBench.cpp).
#pragma once

#include "BenchRows.h"
#include "mhcjit/mhcjit.hpp"

#include "llvm/Support/Error.h"

#include <vector>

namespace mhcjit {

/// Device-to-device copy bandwidth in bytes per second (bytes read plus bytes written).
llvm::Expected<double> measureCopyBandwidth();

/// Median time of every op direction in Ops at every shape, with Base's n, dtype and contract.
llvm::Expected<std::vector<BenchRow>> benchOps(const std::vector<BenchShape> &Shapes,
                                               const std::vector<Op> &Ops, const MixConfig &Base,
                                               double CopyBandwidth);

} // namespace mhcjit
