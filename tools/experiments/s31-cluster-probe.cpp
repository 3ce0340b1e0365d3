// Session 31's probe of project forward's cluster finish, for a tree with
// tools/experiments/s31-adaptive.patch applied (ProjectFwdArgs::cluster_finish): loads one
// prewarmed project_fwd cubin (n = 4, bf16, tf32, no gamma) and, for clusters of its S K splits,
// prints the driver's resident blocks and active clusters, and times the kernel at M tokens under
// each cluster scheduling policy (default, spread, load balancing), then without clusters (the
// partial rows, no reduce_rows). Not part of the build:
//   g++ -O2 -std=c++17 -I/usr/local/cuda/include -Itemplates tools/experiments/s31-cluster-probe.cpp \
//     -L/usr/local/cuda/lib64/stubs -lcuda -o probe
//   probe CUBIN LOWERED_NAME THREADS ROWS C M
#include "mhc_args.h"

#include <cuda.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#define CK(call)                                                                                              \
  do {                                                                                                        \
    CUresult r_ = (call);                                                                                     \
    if (r_ != CUDA_SUCCESS) {                                                                                 \
      const char *s_ = nullptr;                                                                               \
      cuGetErrorString(r_, &s_);                                                                              \
      std::printf("error %s: %s\n", #call, s_ ? s_ : "?");                                                   \
      std::exit(1);                                                                                           \
    }                                                                                                         \
  } while (0)

int main(int argc, char **argv) {
  if (argc != 7) {
    std::printf("usage: probe CUBIN LOWERED_NAME THREADS ROWS C M\n");
    return 2;
  }
  const unsigned Threads = unsigned(std::atoi(argv[3]));
  const int Rows = std::atoi(argv[4]);
  const long long C = std::atoll(argv[5]), M = std::atoll(argv[6]), K = 4 * C;
  const int S = mhc::project_fwd_splits(K), Mix = 24;
  const int Shared = mhc::project_fwd_shared_bytes(4, 2, Rows, true);
  std::ifstream In(argv[1], std::ios::binary);
  std::vector<char> Cubin((std::istreambuf_iterator<char>(In)), std::istreambuf_iterator<char>());
  CK(cuInit(0));
  CUdevice Dev;
  CK(cuDeviceGet(&Dev, 0));
  CUcontext Ctx;
  CK(cuDevicePrimaryCtxRetain(&Ctx, Dev));
  CK(cuCtxSetCurrent(Ctx));
  CUmodule Mod;
  CK(cuModuleLoadData(&Mod, Cubin.data()));
  CUfunction F;
  CK(cuModuleGetFunction(&F, Mod, argv[2]));
  CK(cuFuncSetAttribute(F, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, Shared));
  int PerSm = 0, Sms = 0;
  CK(cuOccupancyMaxActiveBlocksPerMultiprocessor(&PerSm, F, int(Threads), Shared));
  CK(cuDeviceGetAttribute(&Sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, Dev));
  const long long Blocks = (M + Rows - 1) / Rows * S;
  std::printf("C=%lld M=%lld S=%d rows=%d threads=%u shared=%d: %lld blocks; %d an SM x %d SMs = %d resident\n", C, M,
              S, Rows, Threads, Shared, Blocks, PerSm, Sms, PerSm * Sms);

  CUdeviceptr X, Phi, H, Ms;
  CK(cuMemAlloc(&X, size_t(M * K * 2)));
  CK(cuMemAlloc(&Phi, size_t(Mix * K * 4)));
  CK(cuMemAlloc(&H, size_t(S * M * (Mix + 1) * 4))); // room for the partial rows
  CK(cuMemAlloc(&Ms, size_t(M * 4)));
  CK(cuMemsetD8(X, 0x3c, size_t(M * K * 2)));
  CK(cuMemsetD8(Phi, 0x3c, size_t(Mix * K * 4)));
  mhc::ProjectFwdArgs A{reinterpret_cast<const void *>(X), reinterpret_cast<const void *>(Phi), nullptr,
                        reinterpret_cast<float *>(H), reinterpret_cast<float *>(Ms), M, S > 1 ? 1 : 0};
  mhc::ProjectFwdArgs RowArgs{A.x, A.phi, nullptr, A.H, A.H + M * Mix, M, 0}; // split s at H + s M (N + 1)
  void *Params[] = {&A}, *RowParams[] = {&RowArgs};
  const double Bytes = double(M) * (K * 2 + Mix * 4 + 4) + double(Mix) * K * 4;
  const char *Names[] = {"default", "spread", "load_balancing", "no clusters"};
  for (int Policy = 0; Policy < 4; ++Policy) {
    const bool Plain = Policy == 3;
    CUlaunchAttribute Attr[2] = {};
    Attr[0].id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
    Attr[0].value.clusterDim.x = unsigned(S);
    Attr[0].value.clusterDim.y = Attr[0].value.clusterDim.z = 1;
    Attr[1].id = CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE;
    Attr[1].value.clusterSchedulingPolicyPreference = CUclusterSchedulingPolicy(Plain ? 0 : Policy);
    CUlaunchConfig Cfg{};
    Cfg.gridDimX = unsigned(Blocks);
    Cfg.gridDimY = Cfg.gridDimZ = 1;
    Cfg.blockDimX = Threads;
    Cfg.blockDimY = Cfg.blockDimZ = 1;
    Cfg.sharedMemBytes = unsigned(Shared);
    Cfg.attrs = Attr;
    Cfg.numAttrs = S > 1 && !Plain ? 2 : 0;
    int Clusters = -1;
    if (Cfg.numAttrs > 0)
      CK(cuOccupancyMaxActiveClusters(&Clusters, F, &Cfg));
    CUevent E0, E1;
    CK(cuEventCreate(&E0, 0));
    CK(cuEventCreate(&E1, 0));
    for (int I = 0; I < 3; ++I)
      CK(cuLaunchKernelEx(&Cfg, F, Plain ? RowParams : Params, nullptr));
    const int Reps = 20;
    CK(cuEventRecord(E0, nullptr));
    for (int I = 0; I < Reps; ++I)
      CK(cuLaunchKernelEx(&Cfg, F, Plain ? RowParams : Params, nullptr));
    CK(cuEventRecord(E1, nullptr));
    CK(cuEventSynchronize(E1));
    float Ms_ = 0;
    CK(cuEventElapsedTime(&Ms_, E0, E1));
    const double Us = 1000.0 * Ms_ / Reps;
    if (Clusters < 0) // no cluster launch: nothing to ask the driver
      std::printf("  %-14s %32s: %8.1f us, %6.0f GB/s\n", Names[Policy], "", Us, Bytes / Us / 1e3);
    else
      std::printf("  %-14s active clusters %3d (%4d blocks): %8.1f us, %6.0f GB/s\n", Names[Policy], Clusters,
                  Clusters * S, Us, Bytes / Us / 1e3);
  }
  return 0;
}
