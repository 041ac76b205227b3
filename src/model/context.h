// Inference state of one sequence over a shared Model: KV cache, scratch buffers, the forward pass.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "model/kv_cache.h"
#include "model/model.h"
#include "ops/attention.h"
#include "ops/thread_pool.h"

namespace gemma {

struct ContextParams {
    int64_t n_ctx = 0;                 // KV slots; 0: min(n_ctx_train, 4096)
    int64_t n_batch = 512;             // tokens per pass over the weights; longer inputs are split
    TypeId kv_type = TypeId::F16;      // F16 (llama.cpp's default), F32 or Q8_0
    int n_threads = 0;                 // <= 0: all cores; ignored when `pool` is given
    ops::ThreadPool* pool = nullptr;   // share a pool between contexts (must outlive the context)
};

// Called with each named intermediate (llama.cpp's callback names: "inp_scaled", "blk.3.attn_norm",
// "blk.3.Qcur", ...): n_tok rows of row_len floats, `stride` floats apart.
using DebugHook = std::function<void(std::string_view name, const float* data, int64_t n_tok, int64_t row_len,
                                     int64_t stride)>;

class Context {
public:
    Context(const Model& model, const ContextParams& params = {});
    ~Context();
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    // Evaluates tokens[i] at positions[i] (slot = position; token i attends to slots 0..positions[i],
    // so earlier positions must already be in the cache or earlier in this call). Writes the logits of
    // the batch rows listed in `outputs` (strictly increasing indices into tokens) to
    // logits[k * n_vocab ...] for the k-th listed row. Throws gemma::Error on bad ids or positions.
    void forward(std::span<const int32_t> tokens, std::span<const int32_t> positions,
                 std::span<const int32_t> outputs, float* logits);

    // Tokens at positions n_past, n_past+1, ...; returns the last token's logits (n_vocab floats,
    // valid until the next call) and advances n_past.
    const float* eval(std::span<const int32_t> tokens);
    // One token at position n_past (the decode step: allocates nothing).
    const float* decode(int32_t token) { return eval(std::span<const int32_t>(&token, 1)); }

    const Model& model() const { return model_; }
    const ModelConfig& config() const { return model_.config(); }
    KvCache& kv_cache() { return kv_; }
    int64_t n_past() const { return kv_.n_past(); }
    int64_t n_ctx() const { return kv_.n_ctx(); }
    int64_t n_batch() const { return n_batch_; }
    ops::ThreadPool& pool() { return *pool_; }
    void set_debug_hook(DebugHook hook) { hook_ = std::move(hook); }

private:
    // out_rows are indices into the whole forward() call; row_base is this batch's first index there.
    void forward_batch(const int32_t* tokens, const int32_t* positions, int64_t n, const int32_t* out_rows,
                       int64_t n_out, int64_t row_base, float* logits);
    void dump(const char* name, int64_t il, const float* data, int64_t n_tok, int64_t row_len, int64_t stride);
    template <typename F> void for_tokens(int64_t n, F&& fn);

    const Model& model_;
    std::unique_ptr<ops::ThreadPool> own_pool_;
    ops::ThreadPool* pool_ = nullptr;
    int64_t n_batch_ = 0;
    KvCache kv_;
    ops::AttnScratch attn_scratch_;
    DebugHook hook_;

    // Scratch, sized for n_batch tokens once, so nothing is allocated per token.
    std::vector<float> x_;       // [n_batch][n_embd] residual stream
    std::vector<float> h_;       // [n_batch][n_embd] normed input of a block
    std::vector<float> q_;       // [n_batch][n_head * head_dim]
    std::vector<float> k_;       // [n_batch][n_head_kv * head_dim]
    std::vector<float> v_;       // [n_batch][n_head_kv * head_dim]
    std::vector<float> attn_;    // [n_batch][n_head * head_dim]
    std::vector<float> gate_;    // [n_batch][n_ff]
    std::vector<float> up_;      // [n_batch][n_ff]
    std::vector<float> tmp_;     // [n_batch][n_embd] matmul output before the residual add
    std::vector<float> rope_;    // [n_batch][n_rot] cos/sin per token position
    std::vector<int32_t> out_pos_;  // [n_batch] positions of the output rows in the last block
    std::vector<uint8_t> act_;   // converted activations of the widest matmul input
    std::vector<float> logits_;  // [n_vocab] for eval()
};

}  // namespace gemma
