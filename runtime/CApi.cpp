// mhcjit runtime: the C ABI over the C++ API; errors become a status and a thread-local message.
#include "mhcjit/mhcjit.h"
#include "mhcjit/Errors.h"
#include "mhcjit/mhcjit.hpp"

#include <string>

#include <cstddef>

// NOTE: param_dtype was added in the struct's former tail padding; these keep the layout that
// callers built against the older header rely on (same size, the old fields at the old offsets).
static_assert(sizeof(void *) != 8 || sizeof(mhcjit_config) == 64, "mhcjit_config changed size");
static_assert(sizeof(void *) != 8 || offsetof(mhcjit_config, param_dtype) == 60,
              "param_dtype must stay in the former tail padding");

namespace mhcjit {
namespace {

thread_local std::string LastError;

mhcjit_status fail(mhcjit_status Status, std::string Message) {
  LastError = std::move(Message);
  return Status;
}

/// Turns an llvm::Error into a status, keeping its whole message.
mhcjit_status finish(llvm::Error E) {
  if (!E) {
    LastError.clear();
    return MHCJIT_SUCCESS;
  }
  mhcjit_status Status = MHCJIT_ERROR_INTERNAL;
  std::string Message;
  llvm::handleAllErrors(std::move(E), [&](const llvm::ErrorInfoBase &Info) {
    std::error_code Code = Info.convertToErrorCode();
    if (Code.category() == errorCategory() && Status == MHCJIT_ERROR_INTERNAL)
      Status = static_cast<mhcjit_status>(Code.value());
    Message += (Message.empty() ? "" : "\n") + Info.message();
  });
  return fail(Status, std::move(Message));
}

/// Checks and converts a C config; the error names the field and its allowed values.
llvm::Expected<MixConfig> toMixConfig(const mhcjit_config *C) {
  if (!C)
    return makeError(Errc::InvalidArgument, "config is null");
  if (C->struct_size != sizeof(mhcjit_config))
    return makeError(Errc::InvalidArgument,
                     "config.struct_size = " + llvm::Twine(C->struct_size) + " but this library expects " +
                         llvm::Twine(unsigned(sizeof(mhcjit_config))) +
                         "; initialise the config with mhcjit_config_init()");
  MixConfig M;
  switch (C->dtype) {
  case MHCJIT_BF16: M.StreamType = DType::BF16; break;
  case MHCJIT_FP16: M.StreamType = DType::FP16; break;
  case MHCJIT_FP32: M.StreamType = DType::FP32; break;
  default:
    return makeError(Errc::InvalidArgument, "config.dtype = " + llvm::Twine(int(C->dtype)) +
                                                " is not MHCJIT_BF16, MHCJIT_FP16 or MHCJIT_FP32");
  }
  if (C->contract < MHCJIT_CONTRACT_TE || C->contract > MHCJIT_CONTRACT_MEGATRON)
    return makeError(Errc::InvalidArgument, "config.contract = " + llvm::Twine(int(C->contract)) + " is unknown");
  M.Contract = contractPreset(static_cast<ContractKind>(C->contract));
  switch (C->layout) {
  case MHCJIT_LAYOUT_CONTRACT: break;
  case MHCJIT_LAYOUT_SBCN: M.StreamLayout = Layout::SBCN; break;
  case MHCJIT_LAYOUT_SBNC: M.StreamLayout = Layout::SBNC; break;
  default:
    return makeError(Errc::InvalidArgument, "config.layout = " + llvm::Twine(int(C->layout)) + " is unknown");
  }
  if (C->precision != MHCJIT_PRECISION_FP32 && C->precision != MHCJIT_PRECISION_TF32)
    return makeError(Errc::InvalidArgument, "config.precision = " + llvm::Twine(int(C->precision)) + " is unknown");
  if (C->sinkhorn != MHCJIT_SINKHORN_LOG && C->sinkhorn != MHCJIT_SINKHORN_SOFTMAX_EPS)
    return makeError(Errc::InvalidArgument, "config.sinkhorn = " + llvm::Twine(int(C->sinkhorn)) + " is unknown");
  if (C->param_dtype != MHCJIT_PARAM_FP32 && C->param_dtype != MHCJIT_PARAM_STREAM)
    return makeError(Errc::InvalidArgument, "config.param_dtype = " + llvm::Twine(int(C->param_dtype)) +
                                                " is not MHCJIT_PARAM_FP32 or MHCJIT_PARAM_STREAM");
  M.Params = C->param_dtype == MHCJIT_PARAM_STREAM ? ParamType::Stream : ParamType::FP32;
  M.Prec = C->precision == MHCJIT_PRECISION_TF32 ? Precision::TF32 : Precision::FP32;
  M.N = C->n;
  M.C = C->c;
  M.Contract.RmsEps = C->rms_eps;
  M.Contract.Rms = C->rms_outside ? RmsForm::Outside : RmsForm::Inside;
  M.Contract.PreEps = C->pre_eps;
  M.Contract.PostMult = C->post_mult;
  M.Contract.Sinkhorn = C->sinkhorn == MHCJIT_SINKHORN_LOG ? SinkhornKind::Log : SinkhornKind::SoftmaxEps;
  M.Contract.SinkhornIters = C->sinkhorn_iters;
  M.Contract.SinkhornEps = C->sinkhorn_eps;
  return M;
}

/// Converts the C config, runs Launch on it, and turns the outcome into a status.
template <typename LaunchFn> mhcjit_status run(const mhcjit_config *C, LaunchFn Launch) {
  auto Config = toMixConfig(C);
  if (!Config)
    return finish(Config.takeError());
  return finish(Launch(*Config));
}

} // namespace
} // namespace mhcjit

using namespace mhcjit;

extern "C" {

MHCJIT_API mhcjit_status mhcjit_config_init(mhcjit_config *config, mhcjit_contract contract) {
  if (!config)
    return fail(MHCJIT_ERROR_INVALID_ARGUMENT, "config is null");
  if (contract < MHCJIT_CONTRACT_TE || contract > MHCJIT_CONTRACT_MEGATRON)
    return fail(MHCJIT_ERROR_INVALID_ARGUMENT, "contract " + std::to_string(int(contract)) +
                                                   " is not MHCJIT_CONTRACT_TE, _DEEPSEEK or _MEGATRON");
  ContractConstants K = contractPreset(static_cast<ContractKind>(contract));
  *config = mhcjit_config{};
  config->struct_size = sizeof(mhcjit_config);
  config->n = 4;
  config->c = 0;
  config->dtype = MHCJIT_BF16;
  config->layout = MHCJIT_LAYOUT_CONTRACT;
  config->contract = contract;
  config->precision = MHCJIT_PRECISION_FP32;
  config->rms_eps = K.RmsEps;
  config->rms_outside = K.Rms == RmsForm::Outside;
  config->pre_eps = K.PreEps;
  config->post_mult = K.PostMult;
  config->sinkhorn = K.Sinkhorn == SinkhornKind::Log ? MHCJIT_SINKHORN_LOG : MHCJIT_SINKHORN_SOFTMAX_EPS;
  config->sinkhorn_iters = K.SinkhornIters;
  config->sinkhorn_eps = K.SinkhornEps;
  config->param_dtype = MHCJIT_PARAM_FP32;
  LastError.clear();
  return MHCJIT_SUCCESS;
}

MHCJIT_API mhcjit_status mhcjit_aggregate_fwd(const mhcjit_config *config, int64_t m, const void *x,
                                              const float *pre, void *y, void *stream) {
  return run(config, [&](const MixConfig &C) {
    return aggregateForward(C, {m, x, pre, y}, static_cast<CUstream>(stream));
  });
}

MHCJIT_API mhcjit_status mhcjit_aggregate_bwd(const mhcjit_config *config, int64_t m, const void *dy,
                                              const void *x, const float *pre, void *dx, float *dpre,
                                              int accumulate_dx, void *stream) {
  return run(config, [&](const MixConfig &C) {
    return aggregateBackward(C, {m, dy, x, pre, dx, dpre, accumulate_dx != 0}, static_cast<CUstream>(stream));
  });
}

MHCJIT_API mhcjit_status mhcjit_project_fwd(const mhcjit_config *config, int64_t m, const void *x,
                                            const void *phi, const void *gamma, float *H, float *ms,
                                            void *stream) {
  return run(config, [&](const MixConfig &C) {
    return projectForward(C, {m, x, phi, gamma, H, ms}, static_cast<CUstream>(stream));
  });
}

MHCJIT_API mhcjit_status mhcjit_project_bwd(const mhcjit_config *config, int64_t m, const void *x,
                                            const void *phi, const void *gamma, const float *dH,
                                            const float *dms, void *dx, float *dphi, float *dgamma,
                                            int accumulate_dx, void *stream) {
  return run(config, [&](const MixConfig &C) {
    return projectBackward(C, {m, x, phi, gamma, dH, dms, dx, dphi, dgamma, accumulate_dx != 0},
                           static_cast<CUstream>(stream));
  });
}

MHCJIT_API mhcjit_status mhcjit_scale_fwd(const mhcjit_config *config, int64_t m, const float *H,
                                          const float *ms, const float *alpha, const float *beta,
                                          float *pre, float *post, float *logits, void *stream) {
  return run(config, [&](const MixConfig &C) {
    return scaleForward(C, {m, H, ms, alpha, beta, pre, post, logits}, static_cast<CUstream>(stream));
  });
}

MHCJIT_API mhcjit_status mhcjit_scale_bwd(const mhcjit_config *config, int64_t m, const float *H,
                                          const float *ms, const float *alpha, const float *beta,
                                          const float *dpre, const float *dpost, const float *dlogits,
                                          float *dH, float *dms, float *dalpha, float *dbeta, void *stream) {
  return run(config, [&](const MixConfig &C) {
    return scaleBackward(C, {m, H, ms, alpha, beta, dpre, dpost, dlogits, dH, dms, dalpha, dbeta},
                         static_cast<CUstream>(stream));
  });
}

MHCJIT_API mhcjit_status mhcjit_sinkhorn_fwd(const mhcjit_config *config, int64_t m,
                                             const float *logits, float *res, void *stream) {
  return run(config, [&](const MixConfig &C) {
    return sinkhornForward(C, {m, logits, res}, static_cast<CUstream>(stream));
  });
}

MHCJIT_API mhcjit_status mhcjit_sinkhorn_bwd(const mhcjit_config *config, int64_t m,
                                             const float *logits, const float *dres, float *dlogits,
                                             void *stream) {
  return run(config, [&](const MixConfig &C) {
    return sinkhornBackward(C, {m, logits, dres, dlogits}, static_cast<CUstream>(stream));
  });
}

MHCJIT_API mhcjit_status mhcjit_scale_sinkhorn_fwd(const mhcjit_config *config, int64_t m, const float *H,
                                                   const float *ms, const float *alpha, const float *beta,
                                                   float *pre, float *post, float *res, void *stream) {
  return run(config, [&](const MixConfig &C) {
    return scaleSinkhornForward(C, {m, H, ms, alpha, beta, pre, post, res}, static_cast<CUstream>(stream));
  });
}

MHCJIT_API mhcjit_status mhcjit_scale_sinkhorn_bwd(const mhcjit_config *config, int64_t m, const float *H,
                                                   const float *ms, const float *alpha, const float *beta,
                                                   const float *dpre, const float *dpost, const float *dres,
                                                   float *dH, float *dms, float *dalpha, float *dbeta,
                                                   void *stream) {
  return run(config, [&](const MixConfig &C) {
    return scaleSinkhornBackward(C, {m, H, ms, alpha, beta, dpre, dpost, dres, dH, dms, dalpha, dbeta},
                                 static_cast<CUstream>(stream));
  });
}

MHCJIT_API mhcjit_status mhcjit_expand_combine_fwd(const mhcjit_config *config, int64_t m, const void *f,
                                                   const void *bias, const float *post, const void *x,
                                                   const float *res, void *out, void *stream) {
  return run(config, [&](const MixConfig &C) {
    return expandCombineForward(C, {m, f, bias, post, x, res, out}, static_cast<CUstream>(stream));
  });
}

MHCJIT_API mhcjit_status mhcjit_expand_combine_bwd(const mhcjit_config *config, int64_t m, const void *dout,
                                                   const void *f, const void *bias, const float *post,
                                                   const void *x, const float *res, void *df, float *dbias,
                                                   float *dpost, float *dres, void *dx, int accumulate_dx,
                                                   void *stream) {
  return run(config, [&](const MixConfig &C) {
    return expandCombineBackward(
        C, {m, dout, f, bias, post, x, res, df, dbias, dpost, dres, dx, accumulate_dx != 0},
        static_cast<CUstream>(stream));
  });
}

MHCJIT_API mhcjit_status mhcjit_expand_fwd(const mhcjit_config *config, int64_t m, const void *y, void *x,
                                           void *stream) {
  return run(config, [&](const MixConfig &C) { return expandForward(C, {m, y, x}, static_cast<CUstream>(stream)); });
}

MHCJIT_API mhcjit_status mhcjit_expand_bwd(const mhcjit_config *config, int64_t m, const void *dx, void *dy,
                                           void *stream) {
  return run(config, [&](const MixConfig &C) { return expandBackward(C, {m, dx, dy}, static_cast<CUstream>(stream)); });
}

MHCJIT_API mhcjit_status mhcjit_contract_fwd(const mhcjit_config *config, int64_t m, const void *x, void *y,
                                             void *stream) {
  return run(config, [&](const MixConfig &C) { return contractForward(C, {m, x, y}, static_cast<CUstream>(stream)); });
}

MHCJIT_API mhcjit_status mhcjit_contract_bwd(const mhcjit_config *config, int64_t m, const void *dy, void *dx,
                                             int accumulate_dx, void *stream) {
  return run(config, [&](const MixConfig &C) {
    return contractBackward(C, {m, dy, dx, accumulate_dx != 0}, static_cast<CUstream>(stream));
  });
}

MHCJIT_API mhcjit_status mhcjit_head_fwd(const mhcjit_config *config, int64_t m, const void *x, const float *w,
                                         const float *scale, const float *base, void *y, void *stream) {
  return run(config, [&](const MixConfig &C) {
    return headForward(C, {m, x, w, scale, base, y}, static_cast<CUstream>(stream));
  });
}

MHCJIT_API mhcjit_status mhcjit_head_bwd(const mhcjit_config *config, int64_t m, const void *x, const float *w,
                                         const float *scale, const float *base, const void *dy, void *dx,
                                         float *dw, float *dscale, float *dbase, int accumulate_dx, void *stream) {
  return run(config, [&](const MixConfig &C) {
    return headBackward(C, {m, x, w, scale, base, dy, dx, dw, dscale, dbase, accumulate_dx != 0},
                        static_cast<CUstream>(stream));
  });
}

MHCJIT_API const char *mhcjit_last_error(void) { return LastError.c_str(); }

MHCJIT_API const char *mhcjit_version(void) { return MHCJIT_VERSION; }

} // extern "C"
