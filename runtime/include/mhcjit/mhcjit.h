/* mhcjit: the plain C ABI. Every call returns a status; mhcjit_last_error() has the full message.
 * Link libmhcjit_c.so; no C++ or LLVM types cross this boundary. */
#ifndef MHCJIT_MHCJIT_H
#define MHCJIT_MHCJIT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MHCJIT_API __attribute__((visibility("default")))
#else
#define MHCJIT_API
#endif

/** Result of every call. Values other than MHCJIT_SUCCESS leave a message in mhcjit_last_error(). */
typedef enum mhcjit_status {
  MHCJIT_SUCCESS = 0,
  MHCJIT_ERROR_INVALID_ARGUMENT = 1, /**< bad config, size or pointer; nothing was launched */
  MHCJIT_ERROR_UNSUPPORTED = 2,      /**< e.g. an arch this NVRTC cannot target */
  MHCJIT_ERROR_COMPILE = 3,          /**< NVRTC failed; the message holds its whole log */
  MHCJIT_ERROR_CUDA = 4,             /**< a CUDA driver call failed */
  MHCJIT_ERROR_NO_DEVICE = 5,        /**< no driver or no GPU */
  MHCJIT_ERROR_CACHE = 6,            /**< the kernel cache failed */
  MHCJIT_ERROR_NO_JIT = 7,           /**< MHCJIT_NO_JIT=1 and the kernel is in no cache */
  MHCJIT_ERROR_INTERNAL = 99
} mhcjit_status;

typedef enum mhcjit_dtype { MHCJIT_BF16 = 0, MHCJIT_FP16 = 1, MHCJIT_FP32 = 2 } mhcjit_dtype;
typedef enum mhcjit_layout {
  MHCJIT_LAYOUT_CONTRACT = 0, /**< the contract's layout (te: sbcn, deepseek/megatron: sbnc) */
  MHCJIT_LAYOUT_SBCN = 1,     /**< x[m][c][j] */
  MHCJIT_LAYOUT_SBNC = 2      /**< x[m][j][c] */
} mhcjit_layout;
typedef enum mhcjit_contract { MHCJIT_CONTRACT_TE = 0, MHCJIT_CONTRACT_DEEPSEEK = 1, MHCJIT_CONTRACT_MEGATRON = 2 } mhcjit_contract;
typedef enum mhcjit_precision { MHCJIT_PRECISION_FP32 = 0, MHCJIT_PRECISION_TF32 = 1 } mhcjit_precision;
typedef enum mhcjit_sinkhorn { MHCJIT_SINKHORN_LOG = 0, MHCJIT_SINKHORN_SOFTMAX_EPS = 1 } mhcjit_sinkhorn;
/** Element type of the parameters phi, gamma (project) and bias (expand_combine). Their gradients
 * (dphi, dgamma, dbias) are fp32 either way; head's w is always fp32. */
typedef enum mhcjit_param_dtype {
  MHCJIT_PARAM_FP32 = 0,  /**< fp32 (the default; the only choice before param_dtype existed) */
  MHCJIT_PARAM_STREAM = 1 /**< the stream dtype (config.dtype), converted to fp32 on load */
} mhcjit_param_dtype;

/** What every op is specialised on. Fill it with mhcjit_config_init(), then change fields. */
typedef struct mhcjit_config {
  uint32_t struct_size; /**< sizeof(mhcjit_config), set by mhcjit_config_init */
  int32_t n;            /**< streams, 1..8 */
  int64_t c;            /**< hidden size per stream, >= 1 */
  mhcjit_dtype dtype;   /**< stream dtype */
  mhcjit_layout layout;
  mhcjit_contract contract;
  mhcjit_precision precision;
  /* Contract constants, preset by mhcjit_config_init from the contract; override freely. */
  float rms_eps;
  int32_t rms_outside; /**< 0: 1/sqrt(ms + eps); 1: 1/(sqrt(ms) + eps) */
  float pre_eps;
  float post_mult;
  mhcjit_sinkhorn sinkhorn;
  int32_t sinkhorn_iters;
  float sinkhorn_eps;
  /* Added after the first release, in what was the struct's tail padding: sizeof(mhcjit_config)
   * is unchanged (64 bytes) and 0 means fp32, so callers built against the older header, whose
   * configs mhcjit_config_init() fills, keep the fp32 behaviour. */
  mhcjit_param_dtype param_dtype; /**< phi, gamma, bias: MHCJIT_PARAM_FP32 (default) or _STREAM */
} mhcjit_config;

/** Presets *config for a contract: n = 4, c = 0 (set it), bf16, the contract's layout and constants,
 * fp32 parameters. */
MHCJIT_API mhcjit_status mhcjit_config_init(mhcjit_config *config, mhcjit_contract contract);

/** aggregate forward: y[m][c] = sum_j pre[m][j] * x[m][j][c]. stream: a CUstream (NULL = default). */
MHCJIT_API mhcjit_status mhcjit_aggregate_fwd(const mhcjit_config *config, int64_t m, const void *x,
                                              const float *pre, void *y, void *stream);

/** aggregate backward: dx = dy * pre[j] (written in the stream dtype, or added into an fp32 buffer
 * when accumulate_dx != 0); dpre[m][j] = sum_c dy[m][c] * x[m][j][c]. */
MHCJIT_API mhcjit_status mhcjit_aggregate_bwd(const mhcjit_config *config, int64_t m, const void *dy,
                                              const void *x, const float *pre, void *dx, float *dpre,
                                              int accumulate_dx, void *stream);

/* The other ops (SPEC.md sections 1-6). Pointers are device pointers; "stream dtype" buffers use
 * config->dtype; phi, gamma and bias use config->param_dtype (fp32, or the stream dtype: they are
 * `const void *` so that either can be passed; a `const float *` converts implicitly, as before);
 * everything else is fp32. Optional inputs (gamma, bias) may be NULL; their gradients (dgamma,
 * dbias) must then be NULL too. Parameter gradients are fp32 and written, not added. */
MHCJIT_API mhcjit_status mhcjit_project_fwd(const mhcjit_config *config, int64_t m, const void *x,
                                            const void *phi, const void *gamma, float *H, float *ms,
                                            void *stream);
MHCJIT_API mhcjit_status mhcjit_project_bwd(const mhcjit_config *config, int64_t m, const void *x,
                                            const void *phi, const void *gamma, const float *dH,
                                            const float *dms, void *dx, float *dphi, float *dgamma,
                                            int accumulate_dx, void *stream);
MHCJIT_API mhcjit_status mhcjit_scale_fwd(const mhcjit_config *config, int64_t m, const float *H,
                                          const float *ms, const float *alpha, const float *beta,
                                          float *pre, float *post, float *logits, void *stream);
MHCJIT_API mhcjit_status mhcjit_scale_bwd(const mhcjit_config *config, int64_t m, const float *H,
                                          const float *ms, const float *alpha, const float *beta,
                                          const float *dpre, const float *dpost, const float *dlogits,
                                          float *dH, float *dms, float *dalpha, float *dbeta, void *stream);
MHCJIT_API mhcjit_status mhcjit_sinkhorn_fwd(const mhcjit_config *config, int64_t m,
                                             const float *logits, float *res, void *stream);
MHCJIT_API mhcjit_status mhcjit_sinkhorn_bwd(const mhcjit_config *config, int64_t m,
                                             const float *logits, const float *dres, float *dlogits,
                                             void *stream);
/* scale and sinkhorn fused, one kernel a direction: pre, post, res from H and ms. */
MHCJIT_API mhcjit_status mhcjit_scale_sinkhorn_fwd(const mhcjit_config *config, int64_t m, const float *H,
                                                   const float *ms, const float *alpha, const float *beta,
                                                   float *pre, float *post, float *res, void *stream);
MHCJIT_API mhcjit_status mhcjit_scale_sinkhorn_bwd(const mhcjit_config *config, int64_t m, const float *H,
                                                   const float *ms, const float *alpha, const float *beta,
                                                   const float *dpre, const float *dpost, const float *dres,
                                                   float *dH, float *dms, float *dalpha, float *dbeta,
                                                   void *stream);
MHCJIT_API mhcjit_status mhcjit_expand_combine_fwd(const mhcjit_config *config, int64_t m, const void *f,
                                                   const void *bias, const float *post, const void *x,
                                                   const float *res, void *out, void *stream);
MHCJIT_API mhcjit_status mhcjit_expand_combine_bwd(const mhcjit_config *config, int64_t m, const void *dout,
                                                   const void *f, const void *bias, const float *post,
                                                   const void *x, const float *res, void *df, float *dbias,
                                                   float *dpost, float *dres, void *dx, int accumulate_dx,
                                                   void *stream);
MHCJIT_API mhcjit_status mhcjit_expand_fwd(const mhcjit_config *config, int64_t m, const void *y, void *x,
                                           void *stream);
MHCJIT_API mhcjit_status mhcjit_expand_bwd(const mhcjit_config *config, int64_t m, const void *dx, void *dy,
                                           void *stream);
MHCJIT_API mhcjit_status mhcjit_contract_fwd(const mhcjit_config *config, int64_t m, const void *x, void *y,
                                             void *stream);
MHCJIT_API mhcjit_status mhcjit_contract_bwd(const mhcjit_config *config, int64_t m, const void *dy, void *dx,
                                             int accumulate_dx, void *stream);
MHCJIT_API mhcjit_status mhcjit_head_fwd(const mhcjit_config *config, int64_t m, const void *x, const float *w,
                                         const float *scale, const float *base, void *y, void *stream);
MHCJIT_API mhcjit_status mhcjit_head_bwd(const mhcjit_config *config, int64_t m, const void *x, const float *w,
                                         const float *scale, const float *base, const void *dy, void *dx,
                                         float *dw, float *dscale, float *dbase, int accumulate_dx, void *stream);

/** The message of this thread's last failed call (NVRTC log included); "" when none. */
MHCJIT_API const char *mhcjit_last_error(void);

/** "0.1.0" */
MHCJIT_API const char *mhcjit_version(void);

#ifdef __cplusplus
}
#endif

#endif /* MHCJIT_MHCJIT_H */
