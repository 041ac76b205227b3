// The {arch}.* hyper-parameter keys of a Gemma GGUF, written the same way by `convert` and `synth`.
#pragma once
#include <cstdint>
#include <vector>

#include "arch/arch.h"

namespace gemma {

class GgufWriter;

struct GgufHparams {
    int64_t n_ctx = 0, n_embd = 0, n_layer = 0, n_ff = 0, n_head = 0, n_head_kv = 0, head_dim = 0;
    double rms_eps = 1e-6;
    double rope_base = 0;       // {arch}.rope.freq_base, written when the family carries it
    double rope_base_swa = 0;   // {arch}.rope.freq_base_swa; 0: not written
    double rope_scale = 0;      // linear factor of the global layers; 0: no rope.scaling.* keys
    int64_t window = 0;         // sliding window
    std::vector<bool> sliding;  // per layer; empty: the family's default pattern
    double attn_softcap = 0;    // {arch}.attn_logit_softcapping; 0: not written
    double final_softcap = 0;   // {arch}.final_logit_softcapping; 0: not written
};

// Which layers slide by default: llama.cpp's period rule (layer il slides iff il % n < n - 1).
std::vector<bool> default_sliding_layers(const ArchDesc& a, int64_t n_layer);

// Writes the keys in llama.cpp's order (Gemma 1's nine, general.file_type, then the later families'):
// the sliding window only where a layer slides or the family would otherwise assume one, and
// sliding_window_pattern (one bool per layer) only when the layers differ from the family's default.
void write_gguf_hparams(GgufWriter& w, const ArchDesc& a, const GgufHparams& h, uint32_t file_type);

}  // namespace gemma
