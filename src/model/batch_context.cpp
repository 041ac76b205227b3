// The Gemma forward pass of Context, over a batch whose rows belong to different sequences and caches.
#include "model/batch_context.h"

#include <algorithm>

#include "core/error.h"
#include "ops/matmul.h"
#include "ops/ops.h"

namespace gemma {
namespace {

size_t sz(int64_t a, int64_t b) { return static_cast<size_t>(a) * static_cast<size_t>(b); }

}  // namespace

BatchContext::BatchContext(const Model& model, const BatchContextParams& params)
    : model_(model), pool_(params.pool), n_batch_(std::max<int64_t>(1, params.n_batch)), kv_type_(params.kv_type) {
    if (!pool_) throw_error("BatchContext needs a thread pool");
    const ModelConfig& c = model.config();
    // A probe cache settles the rounded size and rejects unsupported types before anything is allocated.
    const KvCache probe(c, std::max<int64_t>(params.n_ctx, 1), kv_type_);
    n_ctx_ = probe.n_ctx();
    shape_ = probe.shape();
    attn_scratch_ = ops::AttnScratch(kv_type_, shape_, pool_->size());
    const size_t nb = static_cast<size_t>(n_batch_);
    for (auto* v : {&tokens_, &pos_, &seq_, &out_rows_, &out_pos_, &out_seq_}) v->resize(nb);
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
    const ModelWeights& w = model.weights();
    size_t act = ops::act_bytes(w.output.type, w.output.n_in);
    for (const LayerWeights& l : w.layers) {
        for (const ops::Matrix* m : {&l.attn_q, &l.attn_k, &l.attn_v, &l.attn_output, &l.ffn_gate, &l.ffn_up,
                                     &l.ffn_down})
            act = std::max(act, ops::act_bytes(m->type, m->n_in));
    }
    act_.resize(act * nb);
    ops::warm_up_tables();
}

std::unique_ptr<KvCache> BatchContext::make_cache() const {
    return std::make_unique<KvCache>(config(), n_ctx_, kv_type_);
}

template <typename F>
void BatchContext::for_tokens(int64_t n, F&& fn) {
    if (n == 1) fn(int64_t{0});
    else pool_->parallel_for(n, [&](int64_t t, int) { fn(t); });
}

void BatchContext::forward(std::span<const SeqChunk> chunks, float* logits) {
    const ModelConfig& c = config();
    int64_t n = 0, n_out = 0;
    caches_.clear();
    for (size_t ci = 0; ci < chunks.size(); ++ci) {
        const SeqChunk& ch = chunks[ci];
        if (!ch.kv || ch.kv->type() != kv_type_ || ch.kv->n_ctx() != n_ctx_)
            throw_error("forward: chunk " + std::to_string(ci) + " has no cache of this context's shape");
        if (std::find(caches_.begin(), caches_.end(), ch.kv) != caches_.end())
            throw_error("forward: two chunks share a cache");
        caches_.push_back(ch.kv);
        const auto len = static_cast<int64_t>(ch.tokens.size());
        if (len == 0) throw_error("forward: empty chunk");
        if (n + len > n_batch_)
            throw_error("forward: more than " + std::to_string(n_batch_) + " tokens in one batch");
        if (ch.pos0 < 0 || ch.pos0 > ch.kv->n_past() || ch.pos0 + len > n_ctx_)
            throw_error("forward: positions " + std::to_string(ch.pos0) + ".." + std::to_string(ch.pos0 + len - 1) +
                        " do not follow a cache holding " + std::to_string(ch.kv->n_past()) + " of " +
                        std::to_string(n_ctx_) + " positions");
        for (int64_t i = 0; i < len; ++i) {
            const int32_t t = ch.tokens[static_cast<size_t>(i)];
            if (t < 0 || t >= c.n_vocab)
                throw_error("token id " + std::to_string(t) + " out of range (vocabulary of " +
                            std::to_string(c.n_vocab) + ")");
            tokens_[static_cast<size_t>(n)] = t;
            pos_[static_cast<size_t>(n)] = ch.pos0 + static_cast<int32_t>(i);
            seq_[static_cast<size_t>(n)] = static_cast<int32_t>(ci);
            ++n;
        }
        if (ch.logits) out_rows_[static_cast<size_t>(n_out++)] = static_cast<int32_t>(n - 1);
    }
    if (n == 0) return;
    run(n, n_out, logits);
    for (const SeqChunk& ch : chunks) {
        const int64_t end = ch.pos0 + static_cast<int64_t>(ch.tokens.size());
        if (end > ch.kv->n_past()) ch.kv->set_n_past(end);
    }
}

void BatchContext::attend(int64_t il, int64_t n, const int32_t* seq, const int32_t* pos) {
    const int64_t QD = config().q_dim();
    for (int64_t r0 = 0; r0 < n;) {
        int64_t r1 = r0 + 1;
        while (r1 < n && seq[r1] == seq[r0]) ++r1;
        const KvCache& kv = *caches_[static_cast<size_t>(seq[r0])];
        ops::attention(kv.layer(il), shape_, q_.data() + r0 * QD, QD, pos + r0, r1 - r0, attn_.data() + r0 * QD, QD,
                       attn_scratch_, *pool_);
        r0 = r1;
    }
}

void BatchContext::run(int64_t n, int64_t n_out, float* logits) {
    const ModelConfig& c = config();
    const ModelWeights& w = model_.weights();
    ops::ThreadPool& pool = *pool_;
    const int64_t E = c.n_embd, QD = c.q_dim(), KD = c.kv_dim(), FF = c.n_ff, NR = c.n_rot;
    const float eps = c.rms_eps;
    float *x = x_.data(), *h = h_.data(), *q = q_.data(), *k = k_.data(), *v = v_.data();
    float *tmp = tmp_.data(), *gate = gate_.data(), *up = up_.data();
    const int32_t* positions = pos_.data();
    const int32_t* seqs = seq_.data();
    bool compacted = false;  // rows [0, n_out) of x are the output rows

    const DequantizeRowFn dq = type_traits(w.token_embd.type).dequantize_row;
    const float escale = c.embd_scale();
    for_tokens(n, [&](int64_t t) {
        float* xt = x + t * E;
        dq(w.token_embd.data + static_cast<size_t>(tokens_[static_cast<size_t>(t)]) * w.token_embd.row_bytes, xt, E);
        ops::scale(xt, E, escale);
        ops::rope_neox_cache(positions[t], NR, c.rope_freq_base, rope_.data() + t * NR);
        if (c.n_layer > 0) ops::rmsnorm(xt, w.layers[0].attn_norm, h + t * E, E, eps);
    });

    const float qscale = c.q_scale();
    for (int64_t il = 0; il < c.n_layer; ++il) {
        const LayerWeights& L = w.layers[static_cast<size_t>(il)];
        const ops::MatmulOut qkv[3] = {{&L.attn_q, q, QD}, {&L.attn_k, k, KD}, {&L.attn_v, v, KD}};
        ops::matmul(qkv, h, E, n, act_.data(), pool);
        for_tokens(n, [&](int64_t t) {
            float* qt = q + t * QD;
            float* kt = k + t * KD;
            const float* cs = rope_.data() + t * NR;
            ops::rope_neox_apply(qt, c.n_head, c.head_dim, NR, cs);
            ops::scale(qt, QD, qscale);
            ops::rope_neox_apply(kt, c.n_head_kv, c.head_dim, NR, cs);
            const KvCache& kv = *caches_[static_cast<size_t>(seqs[t])];
            ops::kv_store(kv.layer(il), shape_, positions[t], kt, v + t * KD);
        });

        if (il == c.n_layer - 1 && n_out < n) {
            // Past the last K/V store only the output rows matter: finish the last block on those alone.
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

        attend(il, n, seqs, positions);
        ops::matmul(L.attn_output, attn_.data(), QD, n, tmp, E, act_.data(), pool);
        for_tokens(n, [&](int64_t t) {
            ops::add(x + t * E, tmp + t * E, E);
            ops::rmsnorm(x + t * E, L.ffn_norm, h + t * E, E, eps);
        });
        const ops::MatmulOut gu[2] = {{&L.ffn_gate, gate, FF}, {&L.ffn_up, up, FF}};
        ops::matmul(gu, h, E, n, act_.data(), pool);
        for_tokens(n, [&](int64_t t) { ops::geglu(gate + t * FF, up + t * FF, gate + t * FF, FF); });
        ops::matmul(L.ffn_down, gate, FF, n, tmp, E, act_.data(), pool);
        const float* next_norm = il + 1 < c.n_layer ? w.layers[static_cast<size_t>(il + 1)].attn_norm : nullptr;
        for_tokens(n, [&](int64_t t) {
            ops::add(x + t * E, tmp + t * E, E);
            if (next_norm) ops::rmsnorm(x + t * E, next_norm, h + t * E, E, eps);
        });
    }

    if (n_out == 0) return;
    for (int64_t i = 0; i < n_out; ++i) {
        const int64_t r = compacted ? i : out_rows_[static_cast<size_t>(i)];
        ops::rmsnorm(x + r * E, w.output_norm, h + i * E, E, eps);
    }
    ops::matmul(w.output, h, E, n_out, logits, c.n_vocab, act_.data(), pool);
}

}  // namespace gemma
