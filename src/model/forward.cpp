// The Gemma forward pass (llama.cpp's src/models/gemma.cpp, gemma2.cpp, gemma3.cpp) over one batch of rows: the
// only copy of the layer loop; the family's tensors and per-layer facts decide which steps run.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "model/cpu_engine.h"
#include "ops/matmul.h"
#include "ops/ops.h"

namespace gemma {

void CpuEngine::embed(int64_t n) {
    const ModelConfig& c = config();
    const ModelWeights& w = model_.weights();
    const int64_t E = c.n_embd, NR = c.n_rot;
    const DequantizeRowFn dq = type_traits(w.token_embd.type).dequantize_row;
    const float escale = c.embd_scale();
    const size_t table = static_cast<size_t>(n_batch_ * NR);
    for_tokens(n, [&](int64_t t) {
        float* xt = x_.data() + t * E;
        dq(w.token_embd.data + static_cast<size_t>(tokens_[static_cast<size_t>(t)]) * w.token_embd.row_bytes, xt, E);
        ops::scale(xt, E, escale);
        for (size_t v = 0; v < rope_variants_.size(); ++v)
            ops::rope_neox_cache(pos_[static_cast<size_t>(t)], NR, rope_variants_[v].base, rope_variants_[v].scale,
                                 rope_.data() + v * table + static_cast<size_t>(t * NR));
        if (c.n_layer > 0) ops::rmsnorm(xt, w.layers[0].attn_norm, h_.data() + t * E, E, c.rms_eps);
    });
    dump("inp_scaled", -1, x_.data(), n, E, E);
}

void CpuEngine::run(int64_t n, int64_t n_out, float* logits) {
    const ModelConfig& c = config();
    const int64_t E = c.n_embd, QD = c.q_dim(), KD = c.kv_dim(), NR = c.n_rot;
    const ModelWeights& w = model_.weights();
    ops::ThreadPool& pool = *pool_;
    float *x = x_.data(), *q = q_.data(), *k = k_.data(), *v = v_.data();
    const int32_t* positions = pos_.data();
    const int32_t* seqs = seq_.data();
    bool compacted = false;  // rows [0, n_out) of x are the output rows

    embed(n);
    for (int64_t il = 0; il < c.n_layer; ++il) {
        const LayerWeights& L = w.layers[static_cast<size_t>(il)];
        dump("attn_norm", il, h_.data(), n, E, E);

        const ops::MatmulOut qkv[3] = {{&L.attn_q, q, QD}, {&L.attn_k, k, KD}, {&L.attn_v, v, KD}};
        ops::matmul(qkv, h_.data(), E, n, act_.data(), pool);
        const float* cs0 = rope_.data() + static_cast<size_t>(layer_rope_[static_cast<size_t>(il)]) *
                                              static_cast<size_t>(n_batch_ * NR);
        const float qscale = c.q_scale();
        for_tokens(n, [&](int64_t t) {
            float* qt = q + t * QD;
            float* kt = k + t * KD;
            // Gemma 3's QK-norm: each head normalised on its own, before RoPE.
            if (L.attn_q_norm)
                for (int64_t hh = 0; hh < c.n_head; ++hh)
                    ops::rmsnorm(qt + hh * c.head_dim, L.attn_q_norm, qt + hh * c.head_dim, c.head_dim, c.rms_eps);
            if (L.attn_k_norm)
                for (int64_t hh = 0; hh < c.n_head_kv; ++hh)
                    ops::rmsnorm(kt + hh * c.head_dim, L.attn_k_norm, kt + hh * c.head_dim, c.head_dim, c.rms_eps);
            const float* cs = cs0 + t * NR;
            ops::rope_neox_apply(qt, c.n_head, c.head_dim, NR, cs);
            ops::scale(qt, QD, qscale);
            ops::rope_neox_apply(kt, c.n_head_kv, c.head_dim, NR, cs);
            const KvCache& kv = *caches_[static_cast<size_t>(seqs[t])];
            ops::kv_store(kv.layer(il), shape_, positions[t], kt, v + t * KD);
        });
        dump("Qcur", il, q, n, QD, QD);
        dump("Kcur", il, k, n, KD, KD);
        dump("Vcur", il, v, n, KD, KD);

        if (il == c.n_layer - 1 && n_out < n) {
            // Past the last K/V store only the output rows matter (llama.cpp's inp_out_ids): move them to the
            // front and finish the last block on those alone.
            if (n_out == 0) return;
            for (int64_t i = 0; i < n_out; ++i) {
                const int64_t r = out_rows_[static_cast<size_t>(i)];  // >= i, so copies never clobber a source
                if (r != i) {
                    std::copy(q + r * QD, q + (r + 1) * QD, q + i * QD);
                    std::copy(x + r * E, x + (r + 1) * E, x + i * E);
                }
                out_pos_[static_cast<size_t>(i)] = positions[r];
                out_seq_[static_cast<size_t>(i)] = seqs[r];
            }
            n = n_out;
            positions = out_pos_.data();
            seqs = out_seq_.data();
            compacted = true;
        }
        attention_block(il, n, positions, seqs);
        ffn_block(il, n);
    }
    finish(n_out, compacted, logits);
}

void CpuEngine::attention_block(int64_t il, int64_t n, const int32_t* pos, const int32_t* seq) {
    const ModelConfig& c = config();
    const LayerWeights& L = model_.weights().layers[static_cast<size_t>(il)];
    const int64_t E = c.n_embd, QD = c.q_dim();
    float *x = x_.data(), *h = h_.data(), *tmp = tmp_.data();
    attend(il, n, seq, pos);
    dump("kqv_out", il, attn_.data(), n, QD, QD);
    ops::matmul(L.attn_output, attn_.data(), QD, n, tmp, E, act_.data(), *pool_);
    dump("attn_out", il, tmp, n, E, E);
    for_tokens(n, [&](int64_t t) {
        float* bt = tmp + t * E;
        if (L.post_attn_norm) ops::rmsnorm(bt, L.post_attn_norm, bt, E, c.rms_eps);
        ops::add(x + t * E, bt, E);
        ops::rmsnorm(x + t * E, L.ffn_norm, h + t * E, E, c.rms_eps);
    });
    if (L.post_attn_norm) dump("attn_post_norm", il, tmp, n, E, E);
    dump("ffn_inp", il, x, n, E, E);
    dump("ffn_norm", il, h, n, E, E);
}

void CpuEngine::ffn_block(int64_t il, int64_t n) {
    const ModelConfig& c = config();
    const ModelWeights& w = model_.weights();
    const LayerWeights& L = w.layers[static_cast<size_t>(il)];
    const int64_t E = c.n_embd, FF = c.n_ff;
    float *x = x_.data(), *h = h_.data(), *tmp = tmp_.data(), *gate = gate_.data(), *up = up_.data();
    const ops::MatmulOut gu[2] = {{&L.ffn_gate, gate, FF}, {&L.ffn_up, up, FF}};
    ops::matmul(gu, h, E, n, act_.data(), *pool_);
    {
        // Segments rather than whole rows, so both cores share the table lookups in decode too.
        constexpr int64_t kSeg = 4096;
        const int64_t n_seg = (FF + kSeg - 1) / kSeg;
        auto seg = [&](int64_t i) {
            const int64_t t = i / n_seg, s0 = (i % n_seg) * kSeg, len = std::min(kSeg, FF - s0);
            float* g = gate + t * FF + s0;
            ops::geglu(g, up + t * FF + s0, g, len);
        };
        if (n * n_seg == 1) seg(0);
        else pool_->parallel_for(n * n_seg, [&](int64_t i, int) { seg(i); });
    }
    dump("ffn_geglu", il, gate, n, FF, FF);
    ops::matmul(L.ffn_down, gate, FF, n, tmp, E, act_.data(), *pool_);
    dump("ffn_out", il, tmp, n, E, E);
    const float* next_norm = il + 1 < c.n_layer ? w.layers[static_cast<size_t>(il + 1)].attn_norm : nullptr;
    for_tokens(n, [&](int64_t t) {
        float* bt = tmp + t * E;
        if (L.post_ffw_norm) ops::rmsnorm(bt, L.post_ffw_norm, bt, E, c.rms_eps);
        ops::add(x + t * E, bt, E);
        if (next_norm) ops::rmsnorm(x + t * E, next_norm, h + t * E, E, c.rms_eps);
    });
    if (L.post_ffw_norm) dump("ffn_post_norm", il, tmp, n, E, E);
    dump("l_out", il, x, n, E, E);
}

void CpuEngine::finish(int64_t n_out, bool compacted, float* logits) {
    if (n_out == 0) return;
    const ModelConfig& c = config();
    const ModelWeights& w = model_.weights();
    const int64_t E = c.n_embd;
    // Only the requested rows go through the final norm and the (vocabulary-sized) output matmul.
    for (int64_t i = 0; i < n_out; ++i) {
        const int64_t r = compacted ? i : out_rows_[static_cast<size_t>(i)];
        ops::rmsnorm(x_.data() + r * E, w.output_norm, h_.data() + i * E, E, c.rms_eps);
    }
    dump("result_norm", -1, h_.data(), n_out, E, E);
    ops::matmul(w.output, h_.data(), E, n_out, logits, c.n_vocab, act_.data(), *pool_);
    if (c.final_softcap > 0) {
        // Gemma 2: logits = f * tanh(logits / f), in fixed segments so every row is computed the same way.
        const float f = c.final_softcap, inv = 1.0f / f;
        constexpr int64_t kSeg = 16384;
        const int64_t n_seg = (c.n_vocab + kSeg - 1) / kSeg;
        pool_->parallel_for(n_out * n_seg, [&](int64_t i, int) {
            const int64_t t = i / n_seg, s0 = (i % n_seg) * kSeg, len = std::min(kSeg, c.n_vocab - s0);
            float* l = logits + t * c.n_vocab + s0;
            for (int64_t j = 0; j < len; ++j) l[j] = std::tanh(l[j] * inv) * f;
        });
    }
    dump("result_output", -1, logits, n_out, c.n_vocab, c.n_vocab);
}

}  // namespace gemma
