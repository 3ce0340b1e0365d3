// mhcjit runtime: what every op's launch code shares: argument checks, alignment, grid size.
#pragma once

#include "mhcjit/KernelProvider.h"
#include "mhcjit/TileHeuristic.h"
#include "mhcjit/mhcjit.hpp"

#include "llvm/ADT/ArrayRef.h"

namespace mhcjit {

/// A named pointer argument with the alignment its element type needs.
struct PointerArg {
  const char *Name;
  const void *Pointer;
  int ElementBytes;
};

/// Bytes per element of the parameters (phi, gamma, bias) of a call with Spec's parameter type.
inline int paramBytes(const KernelSpec &Spec) { return dtypeSize(paramDType(Spec)); }

/// M in [1, 2^40] (far above the 16M tokens users run; keeps every index in 64 bits).
llvm::Error checkTokens(int64_t M);

/// Every pointer non-null and aligned to its element size. Returns the alignment all of them
/// share for vector access: 16 when every pointer is 16-byte aligned, else 0 (use natural).
llvm::Expected<int> checkPointers(llvm::ArrayRef<PointerArg> Pointers);

/// Blocks for a grid-stride kernel of Threads threads a block: enough to cover Work items of
/// ItemsPerBlock, at most what is resident on every SM at once (Kernel.BlocksPerSm, from the
/// driver's occupancy calculator; 2048 threads an SM where that is unknown), so that no block
/// waits for another to finish. Always within the 2^31-1 grid limit.
unsigned gridBlocks(int64_t Work, int64_t ItemsPerBlock, int Threads, const LoadedKernel &Kernel);

/// Launches F with one argument struct passed by value. AfterPrevious: the kernel reads what the
/// previous kernel on Stream wrote and waits for it in-kernel (mhc::wait_for_previous_grid), so
/// on devices that allow it the launch is programmatic (its setup overlaps the previous
/// kernel's end instead of following its completion).
llvm::Error launchKernel(const LoadedKernel &Kernel, unsigned Blocks, int Threads, void *Args,
                         CUstream Stream, bool AfterPrevious = false);

/// Loads Spec's kernel and launches a grid-stride grid over Work items, ItemsPerBlock each.
llvm::Error launchOver(const KernelSpec &Spec, int64_t Work, int64_t ItemsPerBlock, void *Args,
                       CUstream Stream, bool AfterPrevious = false);

/// The spec of the call: the config's spec for Op/Dir, with the pointer alignment that Align
/// (from checkPointers) allows and the accumulate flag. Its tile is the tuning DB's winner for
/// this device and M (M < 1: any M) when the runtime's DB has one, else the heuristic's.
llvm::Expected<KernelSpec> callSpec(const MixConfig &Config, Op Operation, Direction Dir, int Align,
                                    bool AccumulateDx = false, int64_t M = 0);

/// out[c] = sum_{r < Rows} Part[r * Stride + c] for c < Cols, in a fixed order (reduce_rows).
llvm::Error reduceRows(const float *Part, int64_t Rows, int64_t Cols, int64_t Stride, float *Out,
                       CUstream Stream);

/// reduceRows in one launch whose columns from Split on land in Out2: column c goes to Out[c]
/// for c < Split, to Out2[c - Split] otherwise (scale backward: dalpha, then dbeta).
llvm::Error reduceRowsSplit(const float *Part, int64_t Rows, int64_t Cols, int64_t Stride, float *Out,
                            int64_t Split, float *Out2, CUstream Stream);

/// The current context's device as grid sizing sees it (SMs and shared memory), cached per device.
llvm::Expected<SmShape> currentSmShape();

} // namespace mhcjit
