// Element-wise and per-row ops of the Gemma forward pass, with llama.cpp's exact f32 numerics.
#pragma once
#include <cstdint>

namespace gemma::ops {

// y = (x * (1/sqrt(mean(x^2) + eps))) * w, with the squares summed in double (ggml_compute_forward_rms_norm_f32
// followed by ggml_mul). y may alias x.
void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps);

// NEOX RoPE in place on n_heads heads of head_dim floats (pairs (i, i + head_dim/2)) at position pos.
// theta_i = pos * theta_scale^i built by repeated f32 multiplication, as ggml_rope_cache_init does.
// Only the first n_rot dimensions of each head rotate (n_rot = head_dim for Gemma).
// freq_scale is linear RoPE scaling (ggml's freq_scale, ext_factor 0): the angle becomes freq_scale * theta_i.
void rope_neox(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, int32_t pos, float freq_base,
               float freq_scale = 1.0f);

// The cos/sin table rope_neox uses (n_rot/2 pairs), for callers rotating many heads at one position.
void rope_neox_cache(int32_t pos, int64_t n_rot, float freq_base, float freq_scale, float* cos_sin /* [n_rot/2][2] */);
void rope_neox_apply(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float* cos_sin);

// The tanh-approximation GELU as ggml evaluates it in f32 (ggml_gelu_f32).
float gelu_f32(float x);
// GeGLU through ggml's fp16 GELU table: y_i = gelu(g_i) * u_i (ggml_vec_geglu_f32 with GGML_GELU_FP16).
// y may alias g or u.
void geglu(const float* g, const float* u, float* y, int64_t n);
// Builds the fp16 GELU table now (it is built on first use otherwise); call before a latency-critical loop.
void warm_up_tables();
// Plain GELU through the same table.
void gelu(const float* x, float* y, int64_t n);

// Softmax in place over x[0..n): max, exp(x - max) summed in double, then scaled by (float)(1/sum).
void softmax(float* x, int64_t n);

// y = x * s (ggml_vec_scale_f32).
void scale(float* x, int64_t n, float s);
// y += x (residual add).
void add(float* y, const float* x, int64_t n);

}  // namespace gemma::ops
