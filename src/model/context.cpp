// The Gemma 1 forward pass (llama.cpp's src/models/gemma.cpp), batched: one pass over the weights per batch.
#include "model/context.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"
#include "ops/matmul.h"
#include "ops/ops.h"

namespace gemma {
namespace {

size_t sz(int64_t a, int64_t b) { return static_cast<size_t>(a) * static_cast<size_t>(b); }

}  // namespace

Context::Context(const Model& model, const ContextParams& params)
    : model_(model),
      kv_(model.config(), params.n_ctx > 0 ? params.n_ctx : std::min<int64_t>(model.config().n_ctx_train, 4096),
          params.kv_type) {
    const ModelConfig& c = model.config();
    if (params.pool) {
        pool_ = params.pool;
    } else {
        own_pool_ = std::make_unique<ops::ThreadPool>(params.n_threads);
        pool_ = own_pool_.get();
    }
    n_batch_ = std::max<int64_t>(1, std::min(params.n_batch, kv_.n_ctx()));
    attn_scratch_ = ops::AttnScratch(kv_.type(), kv_.shape(), pool_->size());
    x_.resize(sz(n_batch_, c.n_embd));
    h_.resize(sz(n_batch_, c.n_embd));
    q_.resize(sz(n_batch_, c.q_dim()));
    k_.resize(sz(n_batch_, c.kv_dim()));
    v_.resize(sz(n_batch_, c.kv_dim()));
    attn_.resize(sz(n_batch_, c.q_dim()));
    gate_.resize(sz(n_batch_, c.n_ff));
    up_.resize(sz(n_batch_, c.n_ff));
    tmp_.resize(sz(n_batch_, c.n_embd));
    rope_.resize(sz(n_batch_, c.n_rot));
    out_pos_.resize(static_cast<size_t>(n_batch_));
    logits_.resize(static_cast<size_t>(c.n_vocab));

    const ModelWeights& w = model.weights();
    size_t act = ops::act_bytes(w.output.type, w.output.n_in);
    for (const LayerWeights& l : w.layers) {
        for (const ops::Matrix* m : {&l.attn_q, &l.attn_k, &l.attn_v, &l.attn_output, &l.ffn_gate, &l.ffn_up,
                                     &l.ffn_down})
            act = std::max(act, ops::act_bytes(m->type, m->n_in));
    }
    act_.resize(act * static_cast<size_t>(n_batch_));
    ops::warm_up_tables();
}

Context::~Context() = default;

template <typename F>
void Context::for_tokens(int64_t n, F&& fn) {
    if (n == 1) fn(int64_t{0});
    else pool_->parallel_for(n, [&](int64_t t, int) { fn(t); });
}

void Context::dump(const char* name, int64_t il, const float* data, int64_t n_tok, int64_t row_len, int64_t stride) {
    if (!hook_) return;
    char buf[96];
    if (il >= 0) std::snprintf(buf, sizeof buf, "blk.%lld.%s", static_cast<long long>(il), name);
    else std::snprintf(buf, sizeof buf, "%s", name);
    hook_(buf, data, n_tok, row_len, stride);
}

void Context::forward(std::span<const int32_t> tokens, std::span<const int32_t> positions,
                      std::span<const int32_t> outputs, float* logits) {
    const ModelConfig& c = config();
    if (tokens.size() != positions.size())
        throw_error("forward: " + std::to_string(tokens.size()) + " tokens but " + std::to_string(positions.size()) +
                    " positions");
    const auto n = static_cast<int64_t>(tokens.size());
    for (int64_t i = 0; i < n; ++i) {
        const int32_t t = tokens[static_cast<size_t>(i)], p = positions[static_cast<size_t>(i)];
        if (t < 0 || t >= c.n_vocab)
            throw_error("token id " + std::to_string(t) + " out of range (vocabulary of " + std::to_string(c.n_vocab) + ")");
        if (p < 0 || p >= kv_.n_ctx())
            throw_error("position " + std::to_string(p) + " out of range (context of " + std::to_string(kv_.n_ctx()) +
                        " tokens)");
    }
    for (size_t k = 0; k < outputs.size(); ++k) {
        if (outputs[k] < 0 || outputs[k] >= n || (k > 0 && outputs[k] <= outputs[k - 1]))
            throw_error("forward: output rows must be strictly increasing indices into the batch");
    }
    int32_t max_pos = -1;
    size_t out_k = 0;
    for (int64_t b0 = 0; b0 < n; b0 += n_batch_) {
        const int64_t nb = std::min(n_batch_, n - b0);
        const size_t k0 = out_k;
        while (out_k < outputs.size() && outputs[out_k] < b0 + nb) ++out_k;
        forward_batch(tokens.data() + b0, positions.data() + b0, nb, outputs.data() + k0,
                      static_cast<int64_t>(out_k - k0), b0, logits + sz(static_cast<int64_t>(k0), c.n_vocab));
        for (int64_t i = 0; i < nb; ++i) max_pos = std::max(max_pos, positions[static_cast<size_t>(b0 + i)]);
    }
    if (max_pos + 1 > kv_.n_past()) kv_.set_n_past(max_pos + 1);
}

}  // namespace gemma

namespace gemma {

const float* Context::eval(std::span<const int32_t> tokens) {
    if (tokens.empty()) throw_error("eval: no tokens");
    const int64_t n = static_cast<int64_t>(tokens.size());
    const int64_t start = kv_.n_past();
    if (start + n > kv_.n_ctx())
        throw_error("context full: " + std::to_string(start) + " + " + std::to_string(n) + " tokens exceed " +
                    std::to_string(kv_.n_ctx()));
    const int32_t last = static_cast<int32_t>(n - 1);
    if (n == 1) {
        const int32_t pos = static_cast<int32_t>(start);
        forward(tokens, std::span<const int32_t>(&pos, 1), std::span<const int32_t>(&last, 1), logits_.data());
    } else {
        std::vector<int32_t> pos(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) pos[static_cast<size_t>(i)] = static_cast<int32_t>(start + i);
        forward(tokens, pos, std::span<const int32_t>(&last, 1), logits_.data());
    }
    return logits_.data();
}

void Context::forward_batch(const int32_t* tokens, const int32_t* positions, int64_t n, const int32_t* out_rows,
                            int64_t n_out, int64_t row_base, float* logits) {
    const ModelConfig& c = config();
    const ModelWeights& w = model_.weights();
    ops::ThreadPool& pool = *pool_;
    const int64_t E = c.n_embd, QD = c.q_dim(), KD = c.kv_dim(), FF = c.n_ff, NR = c.n_rot;
    const float eps = c.rms_eps;
    float* x = x_.data();
    float* h = h_.data();
    float* q = q_.data();
    float* k = k_.data();
    float* v = v_.data();
    float* tmp = tmp_.data();
    float* gate = gate_.data();
    float* up = up_.data();
    bool compacted = false;  // rows [0, n_out) of x are the output rows

    // Embedding: dequantized row, times sqrtf(n_embd) in f32, then the first block's norm.
    const DequantizeRowFn dq = type_traits(w.token_embd.type).dequantize_row;
    const float escale = c.embd_scale();
    for_tokens(n, [&](int64_t t) {
        float* xt = x + t * E;
        dq(w.token_embd.data + static_cast<size_t>(tokens[t]) * w.token_embd.row_bytes, xt, E);
        ops::scale(xt, E, escale);
        ops::rope_neox_cache(positions[t], NR, c.rope_freq_base, rope_.data() + t * NR);
        if (c.n_layer > 0) ops::rmsnorm(xt, w.layers[0].attn_norm, h + t * E, E, eps);
    });
    dump("inp_scaled", -1, x, n, E, E);

    const ops::AttnShape& shape = kv_.shape();
    const float qscale = c.q_scale();
    for (int64_t il = 0; il < c.n_layer; ++il) {
        const LayerWeights& L = w.layers[static_cast<size_t>(il)];
        dump("attn_norm", il, h, n, E, E);

        const ops::MatmulOut qkv[3] = {{&L.attn_q, q, QD}, {&L.attn_k, k, KD}, {&L.attn_v, v, KD}};
        ops::matmul(qkv, h, E, n, act_.data(), pool);

        const ops::KvLayerView kvl = kv_.layer(il);
        for_tokens(n, [&](int64_t t) {
            float* qt = q + t * QD;
            float* kt = k + t * KD;
            const float* cs = rope_.data() + t * NR;
            ops::rope_neox_apply(qt, c.n_head, c.head_dim, NR, cs);
            ops::scale(qt, QD, qscale);
            ops::rope_neox_apply(kt, c.n_head_kv, c.head_dim, NR, cs);
            ops::kv_store(kvl, shape, positions[t], kt, v + t * KD);
        });
        dump("Qcur", il, q, n, QD, QD);
        dump("Kcur", il, k, n, KD, KD);
        dump("Vcur", il, v, n, KD, KD);

        if (il == c.n_layer - 1 && n_out < n) {
            // Past the last K/V store only the output rows matter (llama.cpp's inp_out_ids): move them
            // to the front and finish the last block on those alone.
            if (n_out == 0) return;
            for (int64_t i = 0; i < n_out; ++i) {
                const int64_t r = out_rows[i] - row_base;  // >= i, so forward copies never clobber a source
                if (r != i) {
                    std::copy(q + r * QD, q + (r + 1) * QD, q + i * QD);
                    std::copy(x + r * E, x + (r + 1) * E, x + i * E);
                }
                out_pos_[static_cast<size_t>(i)] = positions[r];
            }
            n = n_out;
            positions = out_pos_.data();
            compacted = true;
        }

        ops::attention(kvl, shape, q, QD, positions, n, attn_.data(), QD, attn_scratch_, pool);
        dump("kqv_out", il, attn_.data(), n, QD, QD);

        ops::matmul(L.attn_output, attn_.data(), QD, n, tmp, E, act_.data(), pool);
        dump("attn_out", il, tmp, n, E, E);
        for_tokens(n, [&](int64_t t) {
            ops::add(x + t * E, tmp + t * E, E);
            ops::rmsnorm(x + t * E, L.ffn_norm, h + t * E, E, eps);
        });
        dump("ffn_inp", il, x, n, E, E);
        dump("ffn_norm", il, h, n, E, E);

        const ops::MatmulOut gu[2] = {{&L.ffn_gate, gate, FF}, {&L.ffn_up, up, FF}};
        ops::matmul(gu, h, E, n, act_.data(), pool);
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
            else pool.parallel_for(n * n_seg, [&](int64_t i, int) { seg(i); });
        }
        dump("ffn_geglu", il, gate, n, FF, FF);

        ops::matmul(L.ffn_down, gate, FF, n, tmp, E, act_.data(), pool);
        dump("ffn_out", il, tmp, n, E, E);
        const float* next_norm = il + 1 < c.n_layer ? w.layers[static_cast<size_t>(il + 1)].attn_norm : nullptr;
        for_tokens(n, [&](int64_t t) {
            ops::add(x + t * E, tmp + t * E, E);
            if (next_norm) ops::rmsnorm(x + t * E, next_norm, h + t * E, E, eps);
        });
        dump("l_out", il, x, n, E, E);
    }

    if (n_out == 0) return;
    // Only the requested rows go through the final norm and the (vocabulary-sized) output matmul.
    for (int64_t i = 0; i < n_out; ++i) {
        const int64_t r = compacted ? i : out_rows[i] - row_base;
        ops::rmsnorm(x + r * E, w.output_norm, h + i * E, E, eps);
    }
    dump("result_norm", -1, h, n_out, E, E);
    ops::matmul(w.output, h, E, n_out, logits, c.n_vocab, act_.data(), pool);
    dump("result_output", -1, logits, n_out, c.n_vocab, c.n_vocab);
}

}  // namespace gemma
