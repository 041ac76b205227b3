// The CPU engine: one forward pass over a batch of (sequence, position) rows for every Gemma family.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/uninit_vector.h"
#include "model/engine.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "ops/attention.h"
#include "ops/thread_pool.h"

namespace gemma {

class CpuEngine final : public Engine {
public:
    CpuEngine(const Model& model, const EngineParams& params);
    ~CpuEngine() override;

    const ModelConfig& config() const override { return model_.config(); }
    int64_t n_batch() const override { return n_batch_; }
    TypeId kv_type() const override { return kv_type_; }
    int n_threads() const override { return pool_->size(); }
    std::unique_ptr<SeqCache> make_cache(int64_t n_ctx) override;
    size_t cache_bytes(int64_t n_ctx) const override;
    void forward(std::span<const SeqChunk> chunks, float* logits) override;
    void set_debug_hook(DebugHook hook) override { hook_ = std::move(hook); }
    ops::ThreadPool& pool() override { return *pool_; }

private:
    // One pass over the weights for rows [0, n) of tokens_/pos_/seq_; out_rows_[0, n_out) want logits.
    void run(int64_t n, int64_t n_out, float* logits);
    void embed(int64_t n);
    void attention_block(int64_t il, int64_t n, const int32_t* pos, const int32_t* seq);
    void ffn_block(int64_t il, int64_t n);
    void finish(int64_t n_out, bool compacted, float* logits);
    // Maximal runs of rows of one sequence go to ops::attention together.
    void attend(int64_t il, int64_t n, const int32_t* seq, const int32_t* pos);
    void dump(const char* name, int64_t il, const float* data, int64_t n_tok, int64_t row_len, int64_t stride);
    template <typename F>
    void for_tokens(int64_t n, F&& fn) {
        if (n == 1) fn(int64_t{0});
        else pool_->parallel_for(n, [&](int64_t t, int) { fn(t); });
    }

    const Model& model_;
    std::unique_ptr<ops::ThreadPool> own_pool_;
    ops::ThreadPool* pool_ = nullptr;
    int64_t n_batch_ = 0;
    TypeId kv_type_;
    bool flash_attn_ = false;
    ops::AttnShape shape_;
    ops::AttnScratch attn_scratch_;
    DebugHook hook_;

    // RoPE settings (base, scale) the layers use, and which one each layer takes.
    struct RopeVariant { float base, scale; };
    std::vector<RopeVariant> rope_variants_;
    std::vector<int> layer_rope_;  // [n_layer]

    // Per batch row: its token, position, index into caches_; out_rows_ lists the rows whose logits are wanted.
    std::vector<int32_t> tokens_, pos_, seq_, out_rows_, out_pos_, out_seq_;
    std::vector<KvCache*> caches_;
    // Scratch, sized for n_batch rows once, so a pass allocates nothing; uninitialised, so only the rows passes
    // write become resident (a 7B model's 512-row buffers are ~170 MiB, most of it idle in decode).
    UninitVector<float> x_;      // [n_batch][n_embd] residual stream
    UninitVector<float> h_;      // [n_batch][n_embd] normed input of a block
    UninitVector<float> q_;      // [n_batch][n_head * head_dim]
    UninitVector<float> k_;      // [n_batch][n_head_kv * head_dim]
    UninitVector<float> v_;      // [n_batch][n_head_kv * head_dim]
    UninitVector<float> attn_;   // [n_batch][n_head * head_dim]
    UninitVector<float> gate_;   // [n_batch][n_ff]
    UninitVector<float> up_;     // [n_batch][n_ff]
    UninitVector<float> tmp_;    // [n_batch][n_embd] matmul output before the residual add
    UninitVector<float> rope_;   // [variant][n_batch][n_rot] cos/sin per row
    UninitVector<uint8_t> act_;  // converted activations of the widest matmul input
};

}  // namespace gemma
