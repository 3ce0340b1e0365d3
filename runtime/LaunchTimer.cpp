// mhcjit runtime: CUDA-event timing with an L2 flush before each repetition (LaunchTimer).
#include "mhcjit/LaunchTimer.h"
#include "mhcjit/Driver.h"
#include "mhcjit/Errors.h"

#include <algorithm>

namespace mhcjit {

llvm::Expected<LaunchTimer> LaunchTimer::create(TimingPlan Plan) {
  if (Plan.WarmUps < 0 || Plan.Repeats < 1)
    return makeError(Errc::InvalidArgument, "a timing needs at least one repetition and no negative warm-ups");
  auto Context = ensureCurrentContext();
  if (!Context)
    return Context.takeError();
  const DriverApi &Api = *driverApi();
  LaunchTimer Timer(Plan);
  if (llvm::Error E = checkCuda(Api.cuEventCreate(&Timer.Start, CU_EVENT_DEFAULT), "cuEventCreate"))
    return std::move(E);
  if (llvm::Error E = checkCuda(Api.cuEventCreate(&Timer.Stop, CU_EVENT_DEFAULT), "cuEventCreate"))
    return std::move(E);
  const size_t Bytes = size_t(1) << 28;
  if (llvm::Error E = checkCuda(Api.cuMemAlloc(&Timer.Flush, Bytes), "cuMemAlloc(256 MiB L2 flush buffer)"))
    return std::move(E);
  Timer.FlushBytes = Bytes;
  return std::move(Timer);
}

LaunchTimer::LaunchTimer(LaunchTimer &&O) noexcept
    : Plan(O.Plan), Start(O.Start), Stop(O.Stop), Flush(O.Flush), FlushBytes(O.FlushBytes) {
  O.Start = O.Stop = nullptr;
  O.Flush = 0;
  O.FlushBytes = 0;
}

LaunchTimer::~LaunchTimer() {
  if (!Start && !Stop && !Flush)
    return;
  const DriverApi &Api = *driverApi(); // something was created, so the driver is there
  if (Start)
    Api.cuEventDestroy(Start);
  if (Stop)
    Api.cuEventDestroy(Stop);
  if (Flush)
    Api.cuMemFree(Flush);
}

llvm::Expected<LaunchTiming> LaunchTimer::time(const std::function<llvm::Error()> &Launch) {
  const DriverApi &Api = *driverApi();
  LaunchTiming T;
  for (int I = 0; I < Plan.WarmUps + Plan.Repeats; ++I) {
    // a different byte each time, so no write can be skipped as unchanged
    if (llvm::Error E = checkCuda(Api.cuMemsetD8(Flush, static_cast<unsigned char>(I), FlushBytes),
                                  "cuMemsetD8(L2 flush)"))
      return std::move(E);
    if (llvm::Error E = checkCuda(Api.cuEventRecord(Start, nullptr), "cuEventRecord"))
      return std::move(E);
    if (llvm::Error E = Launch())
      return std::move(E);
    if (llvm::Error E = checkCuda(Api.cuEventRecord(Stop, nullptr), "cuEventRecord"))
      return std::move(E);
    if (llvm::Error E = checkCuda(Api.cuEventSynchronize(Stop), "cuEventSynchronize"))
      return std::move(E);
    float Ms = 0;
    if (llvm::Error E = checkCuda(Api.cuEventElapsedTime(&Ms, Start, Stop), "cuEventElapsedTime"))
      return std::move(E);
    if (I >= Plan.WarmUps)
      T.SamplesMs.push_back(Ms);
  }
  std::sort(T.SamplesMs.begin(), T.SamplesMs.end());
  T.MedianMs = T.SamplesMs[T.SamplesMs.size() / 2];
  T.MinMs = T.SamplesMs.front();
  T.MaxMs = T.SamplesMs.back();
  return T;
}

} // namespace mhcjit
