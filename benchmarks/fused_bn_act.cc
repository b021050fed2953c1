// An experiment for benchmarks/efficiency_bound.py, not part of the library: training-mode batch
// norm + LeakyReLU on NHWC float32 in one CPU kernel each way, in the fewest passes over memory
// (forward: statistics, then normalise + activate; backward: the two reductions, then dx). It
// measures how much of the step's gap to the matmul rate fused kernels close. Build: make
// fused_bn_act (writes benchmarks/fused_bn_act.so).
#include <algorithm>
#include <cmath>
#include <vector>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::shape_inference::InferenceContext;

// Output i has the shape of input `like[i]`.
template <int... like>
absl::Status ShapesLike(InferenceContext* c) {
  int i = 0;
  for (int input : {like...}) c->set_output(i++, c->input(input));
  return absl::OkStatus();
}

}  // namespace

REGISTER_OP("BnLeakyReluForward")
    .Input("x: float").Input("gamma: float").Input("beta: float")
    .Output("y: float").Output("mean: float").Output("variance: float")
    .Attr("epsilon: float").Attr("slope: float")
    .SetShapeFn(ShapesLike<0, 1, 1>);

REGISTER_OP("BnLeakyReluBackward")
    .Input("dy: float").Input("x: float").Input("gamma: float").Input("beta: float")
    .Input("mean: float").Input("variance: float")
    .Output("dx: float").Output("dgamma: float").Output("dbeta: float")
    .Attr("epsilon: float").Attr("slope: float")
    .SetShapeFn(ShapesLike<1, 2, 2>);

namespace {

constexpr int64_t kBlockRows = 512;  // rows (pixels) per parallel block

// The loops below take restrict pointers and run over one block of rows, so that the compiler
// vectorizes them over channels.

// Per-channel sums of x - first and of its square (shifted: no cancellation when |mean| >> std).
void SumShifted(const float* __restrict x, const float* __restrict first, int64_t rows,
                int64_t channels, float* __restrict sum, float* __restrict square_sum) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < channels; ++c) {
      const float d = x[r * channels + c] - first[c];
      sum[c] += d;
      square_sum[c] += d * d;
    }
}

// y = LeakyReLU(x * scale + shift).
void Normalize(const float* __restrict x, const float* __restrict scale,
               const float* __restrict shift, float slope, int64_t rows, int64_t channels,
               float* __restrict y) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < channels; ++c) {
      const float z = x[r * channels + c] * scale[c] + shift[c];
      y[r * channels + c] = z > 0.f ? z : slope * z;
    }
}

// The gradient at the activation's input z = x * scale + shift.
inline float ActivationGrad(float x, float dy, float scale, float shift, float slope) {
  return x * scale + shift > 0.f ? dy : slope * dy;
}

// Per-channel sums of dz and dz * (x - mean).
void SumGrads(const float* __restrict dy, const float* __restrict x,
              const float* __restrict scale, const float* __restrict shift,
              const float* __restrict mean, float slope, int64_t rows, int64_t channels,
              float* __restrict sum, float* __restrict centered_sum) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < channels; ++c) {
      const int64_t i = r * channels + c;
      const float dz = ActivationGrad(x[i], dy[i], scale[c], shift[c], slope);
      sum[c] += dz;
      centered_sum[c] += dz * (x[i] - mean[c]);
    }
}

// dx = scale * (dz - mean(dz) - (x - mean) * inv_std^2 * mean(dz * (x - mean))).
void InputGrad(const float* __restrict dy, const float* __restrict x,
               const float* __restrict scale, const float* __restrict shift,
               const float* __restrict mean, const float* __restrict dz_mean,
               const float* __restrict centered_coefficient, float slope, int64_t rows,
               int64_t channels, float* __restrict dx) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < channels; ++c) {
      const int64_t i = r * channels + c;
      const float dz = ActivationGrad(x[i], dy[i], scale[c], shift[c], slope);
      dx[i] = scale[c] * (dz - dz_mean[c] - (x[i] - mean[c]) * centered_coefficient[c]);
    }
}

// Shared by both kernels: the attributes, the layout, and block-parallel loops.
class BnActKernel : public OpKernel {
 public:
  explicit BnActKernel(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("epsilon", &epsilon_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("slope", &slope_));
  }

 protected:
  // Runs fn(first_row, row_count, block) for every block of rows on the op's thread pool.
  template <typename Fn>
  static void ForBlocks(OpKernelContext* ctx, int64_t rows, int64_t channels, Fn fn) {
    ctx->device()->tensorflow_cpu_worker_threads()->workers->ParallelFor(
        Blocks(rows), kBlockRows * channels * 4, [&](int64_t begin, int64_t end) {
          for (int64_t b = begin; b < end; ++b) {
            const int64_t first = b * kBlockRows;
            fn(first, std::min(rows, first + kBlockRows) - first, b);
          }
        });
  }

  // Sets x's (channels, rows) (x = input(x_index), NHWC: channels last, rows everything else)
  // after checking that it is non-empty, that the `per_channel` inputs have one value per
  // channel and that the `like_x` inputs have x's shape; on a bad input fails the op, false.
  static bool Layout(OpKernelContext* ctx, int x_index, std::initializer_list<int> per_channel,
                     std::initializer_list<int> like_x, int64_t* channels, int64_t* rows) {
    const Tensor& x = ctx->input(x_index);
    auto fail = [ctx](const char* what) {
      ctx->SetStatus(absl::InvalidArgumentError(what));
      return false;
    };
    if (x.dims() < 1 || x.NumElements() == 0) return fail("x must be a non-empty NHWC tensor");
    *channels = x.dim_size(x.dims() - 1);
    *rows = x.NumElements() / *channels;
    for (int i : per_channel)
      if (ctx->input(i).NumElements() != *channels)
        return fail("gamma, beta, mean and variance need one value per channel of x");
    for (int i : like_x)
      if (ctx->input(i).shape() != x.shape()) return fail("dy must have x's shape");
    return true;
  }

  // 1 / sqrt(variance + epsilon), computed alike forward and backward (the sign of z must agree).
  float InverseStd(float variance) const { return 1.f / std::sqrt(variance + epsilon_); }

  static int64_t Blocks(int64_t rows) { return (rows + kBlockRows - 1) / kBlockRows; }

  // Adds up the per-block partial sums of one channel in double.
  static double Total(const std::vector<float>& partial, int64_t channels, int64_t c) {
    double total = 0;
    for (size_t i = c; i < partial.size(); i += channels) total += partial[i];
    return total;
  }

  float epsilon_, slope_;
};

class ForwardOp : public BnActKernel {
 public:
  using BnActKernel::BnActKernel;

  void Compute(OpKernelContext* ctx) override {
    int64_t channels, rows;
    if (!Layout(ctx, /*x_index=*/0, {1, 2}, {}, &channels, &rows)) return;
    const Tensor& x_tensor = ctx->input(0);
    const float* x = x_tensor.flat<float>().data();
    const float* gamma = ctx->input(1).flat<float>().data();
    const float* beta = ctx->input(2).flat<float>().data();
    Tensor *y, *mean, *variance;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x_tensor.shape(), &y));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({channels}), &mean));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({channels}), &variance));
    std::vector<float> sum(Blocks(rows) * channels), square_sum(sum.size());
    ForBlocks(ctx, rows, channels, [&](int64_t first, int64_t count, int64_t b) {
      SumShifted(x + first * channels, x, count, channels, &sum[b * channels],
                 &square_sum[b * channels]);
    });
    float* mean_out = mean->flat<float>().data();
    float* variance_out = variance->flat<float>().data();
    std::vector<float> scale(channels), shift(channels);
    for (int64_t c = 0; c < channels; ++c) {
      const double shifted_mean = Total(sum, channels, c) / rows;
      const double var = Total(square_sum, channels, c) / rows - shifted_mean * shifted_mean;
      mean_out[c] = static_cast<float>(shifted_mean + x[c]);
      variance_out[c] = static_cast<float>(std::max(var, 0.0));  // biased, as Keras averages
      scale[c] = gamma[c] * InverseStd(variance_out[c]);
      shift[c] = beta[c] - mean_out[c] * scale[c];
    }
    float* out = y->flat<float>().data();
    ForBlocks(ctx, rows, channels, [&](int64_t first, int64_t count, int64_t) {
      Normalize(x + first * channels, scale.data(), shift.data(), slope_, count, channels,
                out + first * channels);
    });
  }
};

class BackwardOp : public BnActKernel {
 public:
  using BnActKernel::BnActKernel;

  void Compute(OpKernelContext* ctx) override {
    int64_t channels, rows;
    if (!Layout(ctx, /*x_index=*/1, {2, 3, 4, 5}, {0}, &channels, &rows)) return;
    const Tensor& x_tensor = ctx->input(1);
    const float* dy = ctx->input(0).flat<float>().data();
    const float* x = x_tensor.flat<float>().data();
    const float* gamma = ctx->input(2).flat<float>().data();
    const float* beta = ctx->input(3).flat<float>().data();
    const float* mean = ctx->input(4).flat<float>().data();
    const float* variance = ctx->input(5).flat<float>().data();
    Tensor *dx, *dgamma, *dbeta;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x_tensor.shape(), &dx));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({channels}), &dgamma));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({channels}), &dbeta));
    std::vector<float> inv_std(channels), scale(channels), shift(channels);
    for (int64_t c = 0; c < channels; ++c) {
      inv_std[c] = InverseStd(variance[c]);
      scale[c] = gamma[c] * inv_std[c];
      shift[c] = beta[c] - mean[c] * scale[c];
    }
    std::vector<float> sum(Blocks(rows) * channels), centered_sum(sum.size());
    ForBlocks(ctx, rows, channels, [&](int64_t first, int64_t count, int64_t b) {
      SumGrads(dy + first * channels, x + first * channels, scale.data(), shift.data(), mean,
               slope_, count, channels, &sum[b * channels], &centered_sum[b * channels]);
    });
    std::vector<float> dz_mean(channels), centered_coefficient(channels);
    for (int64_t c = 0; c < channels; ++c) {
      const double dz_total = Total(sum, channels, c);
      const double centered_total = Total(centered_sum, channels, c);
      dbeta->flat<float>()(c) = static_cast<float>(dz_total);
      dgamma->flat<float>()(c) = static_cast<float>(centered_total * inv_std[c]);
      dz_mean[c] = static_cast<float>(dz_total / rows);
      centered_coefficient[c] =
          static_cast<float>(centered_total / rows * inv_std[c] * inv_std[c]);
    }
    float* out = dx->flat<float>().data();
    ForBlocks(ctx, rows, channels, [&](int64_t first, int64_t count, int64_t) {
      InputGrad(dy + first * channels, x + first * channels, scale.data(), shift.data(), mean,
                dz_mean.data(), centered_coefficient.data(), slope_, count, channels,
                out + first * channels);
    });
  }
};

}  // namespace

REGISTER_KERNEL_BUILDER(Name("BnLeakyReluForward").Device(::tensorflow::DEVICE_CPU), ForwardOp);
REGISTER_KERNEL_BUILDER(Name("BnLeakyReluBackward").Device(::tensorflow::DEVICE_CPU), BackwardOp);
