// Writes a Gemma GGUF's hyper-parameter keys from one description, so converted and synthetic files agree.
#include "convert/gguf_hparams.h"

#include <algorithm>
#include <string>

#include "gguf/gguf.h"

namespace gemma {

std::vector<bool> default_sliding_layers(const ArchDesc& a, int64_t n_layer) {
    std::vector<bool> v(static_cast<size_t>(n_layer), false);
    const int64_t n = a.swa_period;
    for (int64_t il = 0; il < n_layer && n > 1; ++il) v[static_cast<size_t>(il)] = il % n < n - 1;
    return v;
}

void write_gguf_hparams(GgufWriter& w, const ArchDesc& a, const GgufHparams& h, uint32_t file_type) {
    const std::string p = std::string(a.gguf_arch) + ".";
    auto u32 = [&](const char* k, int64_t v) { w.set(p + k, GgufValue::u32(static_cast<uint32_t>(v))); };
    auto f32 = [&](const char* k, double v) { w.set(p + k, GgufValue::f32(static_cast<float>(v))); };
    u32("context_length", h.n_ctx);
    u32("embedding_length", h.n_embd);
    u32("block_count", h.n_layer);
    u32("feed_forward_length", h.n_ff);
    u32("attention.head_count", h.n_head);
    u32("attention.head_count_kv", h.n_head_kv);
    f32("attention.layer_norm_rms_epsilon", h.rms_eps);
    u32("attention.key_length", h.head_dim);
    u32("attention.value_length", h.head_dim);
    w.set("general.file_type", GgufValue::u32(file_type));
    if (a.gguf_rope_base) f32("rope.freq_base", h.rope_base);

    if (a.swa_period > 0) {
        const std::vector<bool> def = default_sliding_layers(a, h.n_layer);
        const std::vector<bool>& sl = h.sliding.empty() ? def : h.sliding;
        const bool any = std::find(sl.begin(), sl.end(), true) != sl.end();
        // Without the key a family either has no sliding layers (Gemma 3) or assumes a window (Gemma 2).
        if (any || a.window > 0) u32("attention.sliding_window", h.window);
        if (sl != def && (any || a.window > 0)) {
            GgufValue v;
            v.type = GgufType::ARRAY;
            v.elem_type = GgufType::BOOL;
            v.count = sl.size();
            for (bool b : sl) v.raw.push_back(b ? 1 : 0);
            w.set(p + "attention.sliding_window_pattern", std::move(v));
        }
    }
    if (h.rope_base_swa > 0) f32("rope.freq_base_swa", h.rope_base_swa);
    if (h.rope_scale > 0) {
        w.set(p + "rope.scaling.type", GgufValue::string("linear"));
        f32("rope.scaling.factor", h.rope_scale);
    }
    if (h.attn_softcap > 0) f32("attn_logit_softcapping", h.attn_softcap);
    if (h.final_softcap > 0) f32("final_logit_softcapping", h.final_softcap);
}

}  // namespace gemma
