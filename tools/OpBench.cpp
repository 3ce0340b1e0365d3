// mhc-jit bench (ops): times every op and direction with the runtime's LaunchTimer (CUDA events,
// L2 flushed before each repetition, median of 25 after 3 warm-ups) on the runtime's scratch
// launches (the same launch code `mhc-jit tune` and MHCJIT_AUTOTUNE time), against the
// device-to-device copy bandwidth measured in the same run. Speed of light = the op's minimal
// bytes / copy bandwidth.
#include "OpBench.h"

#include "DeviceBuffer.h"

#include "mhcjit/Driver.h"
#include "mhcjit/LaunchTimer.h"
#include "mhcjit/ScratchLaunch.h"
#include "mhcjit/mhcjit.hpp"

#include <algorithm>

namespace mhcjit {

llvm::Expected<double> measureCopyBandwidth() {
  const size_t Bytes = size_t(1) << 30;
  auto Src = DeviceBuffer::allocate(Bytes);
  if (!Src)
    return Src.takeError();
  auto Dst = DeviceBuffer::allocate(Bytes);
  if (!Dst)
    return Dst.takeError();
  if (llvm::Error E = Src->fill(1))
    return std::move(E);
  auto Timer = LaunchTimer::create();
  if (!Timer)
    return Timer.takeError();
  auto Ms = Timer->time([&] {
    return checkCuda(driverApi()->cuMemcpyDtoD(reinterpret_cast<CUdeviceptr>(Dst->get()),
                                               reinterpret_cast<CUdeviceptr>(Src->get()), Bytes),
                     "cuMemcpyDtoD");
  });
  if (!Ms)
    return Ms.takeError();
  return 2.0 * Bytes / (Ms->MedianMs * 1e-3); // bytes read plus bytes written, per second
}

llvm::Expected<std::vector<BenchRow>> benchOps(const std::vector<BenchShape> &Shapes,
                                               const std::vector<Op> &Ops, const MixConfig &Base,
                                               double CopyBandwidth) {
  auto Timer = LaunchTimer::create();
  if (!Timer)
    return Timer.takeError();
  std::vector<BenchRow> Rows;
  for (const BenchShape &Shape : Shapes) {
    MixConfig Config = Base;
    Config.C = Shape.C;
    const int64_t M = Shape.B * Shape.T;
    for (Op O : allOps())
      for (Direction D : {Direction::Forward, Direction::Backward}) {
        if (std::find(Ops.begin(), Ops.end(), O) == Ops.end())
          continue;
        // fresh inputs for every op direction, as the tuner has: an op never reads what another
        // wrote (last session the bench fed scale the H that project made from such inputs)
        ScratchTensors Scratch;
        auto Launch = scratchLaunch(Config, O, D, M, Scratch);
        if (!Launch)
          return Launch.takeError();
        auto T = Timer->time(Launch->Launch);
        if (!T)
          return T.takeError();
        BenchRow R;
        R.Shape = Shape;
        R.Operation = O;
        R.Dir = D;
        R.Milliseconds = T->MedianMs;
        R.Bytes = Launch->MinimalBytes;
        R.GBps = R.Bytes / (T->MedianMs * 1e6);
        R.SolPercent = 100.0 * (R.Bytes / CopyBandwidth) / (T->MedianMs * 1e-3);
        Rows.push_back(R);
      }
  }
  return Rows;
}

} // namespace mhcjit
