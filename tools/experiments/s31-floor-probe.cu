// Session 31's floor probe for target 4: what the bench's timing (LaunchTimer: a 256 MiB memset
// before each repetition, events around the launch, median of 25 after 3 warm-ups) gives an empty
// kernel and plain 16-byte copies that move scale_sinkhorn's bytes at M = 32768, so that the
// forward's 8 us and the backward's 12 us can be read against what no kernel beats here.
// Not part of the build:
//   nvcc -O3 -arch=sm_90a -o floor tools/experiments/s31-floor-probe.cu
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <vector>

#define CK(call)                                                                                              \
  do {                                                                                                        \
    cudaError_t e_ = (call);                                                                                  \
    if (e_ != cudaSuccess) {                                                                                  \
      std::printf("error %s: %s\n", #call, cudaGetErrorString(e_));                                          \
      return 1;                                                                                               \
    }                                                                                                         \
  } while (0)

__global__ void empty_kernel() {}

/// An empty kernel launched to depend on the one before it (programmatic dependent launch, as
/// reduce_rows is): it waits for that grid's completion inside, as reduce_rows does.
__global__ void waiting_kernel() { asm volatile("griddepcontrol.wait;" ::: "memory"); }

/// Reads `reads` float4s and writes `writes` of them (writes <= reads): out[i] = in[i], and the
/// reads past `writes` are summed into a value stored only if it is NaN, so none is dropped.
__global__ void read_write(const float4 *__restrict__ in, long reads, float4 *__restrict__ out, long writes) {
  float acc = 0.0f;
  for (long i = long(blockIdx.x) * blockDim.x + threadIdx.x; i < reads; i += long(gridDim.x) * blockDim.x) {
    const float4 v = in[i];
    if (i < writes)
      out[i] = v;
    else
      acc += v.x + v.y + v.z + v.w;
  }
  if (acc != acc)
    out[0].x = acc;
}

static float median_us(const std::function<void()> &launch, void *flush, size_t flush_bytes) {
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  std::vector<float> ms;
  for (int i = 0; i < 28; ++i) {
    cudaMemset(flush, i, flush_bytes);
    cudaEventRecord(a, nullptr);
    launch();
    cudaEventRecord(b, nullptr);
    cudaEventSynchronize(b);
    float t = 0;
    cudaEventElapsedTime(&t, a, b);
    if (i >= 3)
      ms.push_back(t);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2] * 1000.0f;
}

int main() {
  const size_t flush_bytes = size_t(1) << 28;
  void *flush = nullptr, *in = nullptr, *out = nullptr;
  CK(cudaMalloc(&flush, flush_bytes));
  CK(cudaMalloc(&in, size_t(64) << 20));
  CK(cudaMalloc(&out, size_t(64) << 20));
  CK(cudaMemset(in, 0, size_t(64) << 20));
  int sms = 0;
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  std::printf("empty kernel: %.2f us\n", median_us([] { empty_kernel<<<1, 32>>>(); }, flush, flush_bytes));
  std::printf("two empty kernels: %.2f us\n", median_us([] {
                empty_kernel<<<1, 32>>>();
                empty_kernel<<<1, 32>>>();
              }, flush, flush_bytes));
  std::printf("an empty kernel, then one launched as dependent (what a second launch such as reduce_rows adds at "
              "least): %.2f us\n",
              median_us([] {
                empty_kernel<<<1, 32>>>();
                cudaLaunchAttribute attr{};
                attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
                attr.val.programmaticStreamSerializationAllowed = 1;
                cudaLaunchConfig_t cfg{};
                cfg.gridDim = dim3(1);
                cfg.blockDim = dim3(32);
                cfg.attrs = &attr;
                cfg.numAttrs = 1;
                cudaLaunchKernelEx(&cfg, waiting_kernel);
              }, flush, flush_bytes));
  const long M = 32768;
  struct Case {
    const char *name;
    long read_bytes, write_bytes;
  } cases[] = {
      {"scale_sinkhorn fwd bytes (H, ms -> pre, post, res)", M * 25 * 4, M * 24 * 4},
      {"scale_sinkhorn bwd bytes (H, ms, dpre, dpost, dres -> dH, dms)", M * 49 * 4, M * 25 * 4},
      {"read only, fwd's reads", M * 25 * 4, 0},
  };
  for (const Case &c : cases) {
    const long reads = c.read_bytes / 16, writes = c.write_bytes / 16;
    float best = 1e30f;
    for (int threads : {128, 256, 512})
      for (int per_sm : {1, 2, 4, 8, 16}) {
        const long grid = std::min<long>(long(sms) * per_sm, (reads + threads - 1) / threads);
        const float us = median_us(
            [&] { read_write<<<unsigned(grid), threads>>>((const float4 *)in, reads, (float4 *)out, writes); }, flush,
            flush_bytes);
        best = std::min(best, us);
        std::printf("  %s: %ld blocks x %d: %.2f us\n", c.name, grid, threads, us);
      }
    std::printf("%s: %.2f MB, best %.2f us\n", c.name, (c.read_bytes + c.write_bytes) / 1e6, best);
  }
  CK(cudaGetLastError());
  return 0;
}
