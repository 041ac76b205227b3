// Element-wise ops; every expression keeps ggml's evaluation order so results match it in f32.
#include "ops/ops.h"

#include <cmath>
#include <limits>
#include <vector>

#include "core/fp16.h"

namespace gemma::ops {

void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
    const float mean = static_cast<float>(sum / static_cast<double>(n));
    const float s = 1.0f / std::sqrt(mean + eps);
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * s) * w[i];
}

void rope_neox_cache(int32_t pos, int64_t n_rot, float freq_base, float freq_scale, float* cos_sin) {
    const float theta_scale = std::pow(freq_base, -2.0f / static_cast<float>(n_rot));
    float theta = static_cast<float>(pos);
    for (int64_t i = 0; i < n_rot / 2; ++i) {
        // ggml's rope_yarn with ext_factor 0: the interpolated angle freq_scale * theta (exact when the scale is 1).
        const float t = freq_scale * theta;
        cos_sin[2 * i] = std::cos(t);
        cos_sin[2 * i + 1] = std::sin(t);
        theta *= theta_scale;
    }
}

void rope_neox_apply(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float* cos_sin) {
    const int64_t half = n_rot / 2;
    for (int64_t h = 0; h < n_heads; ++h) {
        float* v = x + h * head_dim;
        for (int64_t i = 0; i < half; ++i) {
            const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
            const float x0 = v[i], x1 = v[i + half];
            v[i] = x0 * c - x1 * s;
            v[i + half] = x0 * s + x1 * c;
        }
    }
}

void rope_neox(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, int32_t pos, float freq_base,
               float freq_scale) {
    // Gemma heads are at most a few hundred wide; a stack table avoids allocating per call.
    constexpr int64_t kMaxRot = 1024;
    float cs[kMaxRot];
    if (n_rot > kMaxRot) {
        std::vector<float> big(static_cast<size_t>(n_rot));
        rope_neox_cache(pos, n_rot, freq_base, freq_scale, big.data());
        rope_neox_apply(x, n_heads, head_dim, n_rot, big.data());
        return;
    }
    rope_neox_cache(pos, n_rot, freq_base, freq_scale, cs);
    rope_neox_apply(x, n_heads, head_dim, n_rot, cs);
}

float gelu_f32(float x) {
    constexpr float kGeluCoefA = 0.044715f;
    constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
    return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + kGeluCoefA * x * x)));
}

namespace {

// ggml_table_gelu_f16: GELU of every fp16 value, rounded to fp16, stored here already widened.
const float* gelu_table() {
    static const std::vector<float> table = [] {
        std::vector<float> t(65536);
        for (uint32_t i = 0; i < 65536; ++i) {
            const float v = fp16_to_fp32(static_cast<uint16_t>(i));
            t[i] = fp16_to_fp32(fp32_to_fp16(gelu_f32(v)));
        }
        return t;
    }();
    return table.data();
}

}  // namespace

void warm_up_tables() { (void)gelu_table(); }

void geglu(const float* g, const float* u, float* y, int64_t n) {
    const float* t = gelu_table();
    for (int64_t i = 0; i < n; ++i) {
        const float x = g[i];
        if (x <= -10.0f) y[i] = 0.0f;
        else if (x >= 10.0f) y[i] = x * u[i];
        else y[i] = t[fp32_to_fp16(x)] * u[i];
    }
}

void gelu(const float* x, float* y, int64_t n) {
    const float* t = gelu_table();
    for (int64_t i = 0; i < n; ++i) {
        const float v = x[i];
        if (v <= -10.0f) y[i] = 0.0f;
        else if (v >= 10.0f) y[i] = v;
        else y[i] = t[fp32_to_fp16(v)];
    }
}

void softmax(float* x, int64_t n) {
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        const float e = std::exp(x[i] - mx);
        x[i] = e;
        sum += static_cast<double>(e);
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void scale(float* x, int64_t n, float s) {
    for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

void add(float* y, const float* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace gemma::ops
