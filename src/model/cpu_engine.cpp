// CpuEngine: scratch sizing, caches, and splitting chunks of many sequences into passes over the weights.
#include "model/cpu_engine.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"
#include "ops/matmul.h"
#include "ops/ops.h"

namespace gemma {
namespace {

size_t sz(int64_t a, int64_t b) { return static_cast<size_t>(a) * static_cast<size_t>(b); }

}  // namespace

CpuEngine::CpuEngine(const Model& model, const EngineParams& params)
    : model_(model), kv_type_(params.kv_type), flash_attn_(params.flash_attn) {
    const ModelConfig& c = model.config();
    if (params.pool) {
        pool_ = params.pool;
    } else {
        own_pool_ = std::make_unique<ops::ThreadPool>(params.n_threads);
        pool_ = own_pool_.get();
    }
    // Rejects an unsupported cache type now rather than at the first cache.
    (void)KvCache::bytes_for(c, 32, kv_type_, 1);
    n_batch_ = std::max<int64_t>(1, params.n_batch);
    shape_ = {c.n_head, c.n_head_kv, c.head_dim};
    for (const LayerConfig& l : c.layers) {
        int v = 0;
        while (v < static_cast<int>(rope_variants_.size()) &&
               !(rope_variants_[static_cast<size_t>(v)].base == l.rope_base &&
                 rope_variants_[static_cast<size_t>(v)].scale == l.rope_freq_scale))
            ++v;
        if (v == static_cast<int>(rope_variants_.size())) rope_variants_.push_back({l.rope_base, l.rope_freq_scale});
        layer_rope_.push_back(v);
    }
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
    rope_.resize(sz(n_batch_, c.n_rot) * std::max<size_t>(rope_variants_.size(), 1));
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

CpuEngine::~CpuEngine() = default;

std::unique_ptr<SeqCache> CpuEngine::make_cache(int64_t n_ctx) {
    return std::make_unique<KvCache>(config(), n_ctx, kv_type_, n_batch_);
}

size_t CpuEngine::cache_bytes(int64_t n_ctx) const { return KvCache::bytes_for(config(), n_ctx, kv_type_, n_batch_); }

void CpuEngine::dump(const char* name, int64_t il, const float* data, int64_t n_tok, int64_t row_len, int64_t stride) {
    if (!hook_) return;
    char buf[96];
    if (il >= 0) std::snprintf(buf, sizeof buf, "blk.%lld.%s", static_cast<long long>(il), name);
    else std::snprintf(buf, sizeof buf, "%s", name);
    hook_(buf, data, n_tok, row_len, stride);
}

void CpuEngine::forward(std::span<const SeqChunk> chunks, float* logits) {
    const ModelConfig& c = config();
    // Everything is checked before the first pass, so bad input never leaves a cache half written.
    caches_.clear();
    for (size_t ci = 0; ci < chunks.size(); ++ci) {
        const SeqChunk& ch = chunks[ci];
        auto* kv = dynamic_cast<KvCache*>(ch.cache);
        if (!kv || kv->type() != kv_type_ || kv->n_batch() < n_batch_)
            throw_error("forward: chunk " + std::to_string(ci) + " has no cache made by this engine");
        if (std::find(caches_.begin(), caches_.end(), kv) != caches_.end())
            throw_error("forward: two chunks share a cache");
        caches_.push_back(kv);
        const auto len = static_cast<int64_t>(ch.tokens.size());
        if (len == 0) throw_error("forward: empty chunk");
        if (ch.n_logits < 0 || ch.n_logits > len)
            throw_error("forward: " + std::to_string(ch.n_logits) + " logit rows asked of a chunk of " +
                        std::to_string(len) + " tokens");
        if (ch.pos0 < 0 || ch.pos0 > kv->n_past() || ch.pos0 + len > kv->n_ctx())
            throw_error("position " + std::to_string(ch.pos0 + len - 1) + " out of range: positions " +
                        std::to_string(ch.pos0) + ".." + std::to_string(ch.pos0 + len - 1) +
                        " do not follow a cache holding " + std::to_string(kv->n_past()) + " of " +
                        std::to_string(kv->n_ctx()) + " positions");
        if (kv->resume_point(ch.pos0) != ch.pos0)
            throw_error("forward: the cache cannot continue at position " + std::to_string(ch.pos0) +
                        " (its sliding-window layers no longer hold the keys that position sees)");
        for (const int32_t t : ch.tokens)
            if (t < 0 || t >= c.n_vocab)
                throw_error("token id " + std::to_string(t) + " out of range (vocabulary of " +
                            std::to_string(c.n_vocab) + ")");
    }
    // Passes of at most n_batch rows; a chunk may span several. Logits leave in chunk and row order.
    int64_t n = 0, n_out = 0;
    float* out = logits;
    auto flush = [&] {
        if (n == 0) return;
        run(n, n_out, out);
        out += sz(n_out, c.n_vocab);
        for (int64_t r = 0; r < n; ++r) caches_[static_cast<size_t>(seq_[static_cast<size_t>(r)])]->note_stored(pos_[static_cast<size_t>(r)]);
        n = n_out = 0;
    };
    for (size_t ci = 0; ci < chunks.size(); ++ci) {
        const SeqChunk& ch = chunks[ci];
        const auto len = static_cast<int64_t>(ch.tokens.size());
        for (int64_t i = 0; i < len; ++i) {
            if (n == n_batch_) flush();
            const size_t r = static_cast<size_t>(n);
            tokens_[r] = ch.tokens[static_cast<size_t>(i)];
            pos_[r] = ch.pos0 + static_cast<int32_t>(i);
            seq_[r] = static_cast<int32_t>(ci);
            if (i >= len - ch.n_logits) out_rows_[static_cast<size_t>(n_out++)] = static_cast<int32_t>(n);
            ++n;
        }
    }
    flush();
    for (size_t ci = 0; ci < chunks.size(); ++ci) {
        const int64_t end = chunks[ci].pos0 + static_cast<int64_t>(chunks[ci].tokens.size());
        if (end > caches_[ci]->n_past()) caches_[ci]->set_n_past(end);
    }
}

void CpuEngine::attend(int64_t il, int64_t n, const int32_t* seq, const int32_t* pos) {
    const ModelConfig& c = config();
    const int64_t QD = c.q_dim();
    const LayerConfig& lc = c.layers[static_cast<size_t>(il)];
    const ops::AttnParams ap{lc.window, c.attn_softcap, flash_attn_};
    for (int64_t r0 = 0; r0 < n;) {
        int64_t r1 = r0 + 1;
        while (r1 < n && seq[r1] == seq[r0]) ++r1;
        const KvCache& kv = *caches_[static_cast<size_t>(seq[r0])];
        ops::attention(kv.layer(il), shape_, ap, q_.data() + r0 * QD, QD, pos + r0, r1 - r0, attn_.data() + r0 * QD,
                       QD, attn_scratch_, *pool_);
        r0 = r1;
    }
}

std::unique_ptr<Engine> make_cpu_engine(const Model& model, const EngineParams& params) {
    return std::make_unique<CpuEngine>(model, params);
}

}  // namespace gemma
