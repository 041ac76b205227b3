// The model-level engine seam: runtime and server code run a model only through this interface, so another
// backend (a GPU) can live behind it without touching them.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "model/config.h"
#include "quant/types.h"

namespace gemma {

class Model;
namespace ops {
class ThreadPool;
}

// The KV cache of one sequence, made by an engine and used only with it.
class SeqCache {
public:
    virtual ~SeqCache() = default;
    virtual int64_t n_ctx() const = 0;      // positions it can hold
    virtual size_t bytes() const = 0;       // memory it takes when full
    // Bookkeeping for the runtime: positions [0, n_past) hold valid entries. forward() advances it; a caller
    // reusing a common prefix sets it back (later positions are simply overwritten).
    virtual int64_t n_past() const = 0;
    virtual void set_n_past(int64_t n) = 0;
    void clear() { set_n_past(0); }
    // The longest prefix of the held positions that evaluation can continue after: n itself when the cache still
    // holds everything a token at position n needs, else 0. (A sliding-window layer keeps a ring of recent
    // positions; after a long stretch a rollback far back finds them overwritten.) n must be <= n_past().
    virtual int64_t resume_point(int64_t n) const = 0;
};

// Consecutive tokens of one sequence: tokens[i] goes to position pos0 + i of `cache`.
struct SeqChunk {
    SeqCache* cache = nullptr;
    std::span<const int32_t> tokens;
    int32_t pos0 = 0;       // the cache must hold positions [0, pos0) and be able to resume there
    int32_t n_logits = 0;   // logits are wanted for the last n_logits tokens of the chunk
};

// Called with each named intermediate (llama.cpp's callback names: "inp_scaled", "blk.3.attn_norm",
// "blk.3.Qcur", ...): n_tok rows of row_len floats, `stride` floats apart.
using DebugHook = std::function<void(std::string_view name, const float* data, int64_t n_tok, int64_t row_len,
                                     int64_t stride)>;

struct EngineParams {
    int64_t n_batch = 512;             // most tokens one pass over the weights takes; forward() splits longer input
    TypeId kv_type = TypeId::F16;      // F16 (llama.cpp's default), F32 or Q8_0
    int n_threads = 0;                 // <= 0: all cores; ignored when `pool` is given
    ops::ThreadPool* pool = nullptr;   // share a pool (must outlive the engine)
    bool flash_attn = false;           // flash-attention numerics (ops::AttnParams::flash); off: llama.cpp's default
};

class Engine {
public:
    virtual ~Engine() = default;
    virtual const ModelConfig& config() const = 0;
    virtual int64_t n_batch() const = 0;
    virtual TypeId kv_type() const = 0;
    virtual int n_threads() const = 0;
    // A cache for n_ctx positions (rounded up); throws gemma::Error when it cannot be made.
    virtual std::unique_ptr<SeqCache> make_cache(int64_t n_ctx) = 0;
    // What make_cache(n_ctx) would take, in bytes.
    virtual size_t cache_bytes(int64_t n_ctx) const = 0;
    // Evaluates every chunk (distinct caches of this engine), in passes of at most n_batch tokens over the weights.
    // Logits of the requested rows are written in chunk order, row order within a chunk: n_vocab floats each.
    // A token's logits do not depend on which other tokens share its passes. Each cache's n_past becomes at least
    // pos0 + its chunk's length. Throws gemma::Error on bad ids, positions or caches.
    virtual void forward(std::span<const SeqChunk> chunks, float* logits) = 0;
    virtual void set_debug_hook(DebugHook hook) = 0;
    virtual ops::ThreadPool& pool() = 0;
};

std::unique_ptr<Engine> make_cpu_engine(const Model& model, const EngineParams& params = {});

// The context length a run gets when none is asked for: the model's trained length, halved until n_seqs caches
// of it fit in a quarter of the machine's memory (never below 512 positions or above the trained length).
int64_t default_n_ctx(const Engine& engine, int64_t n_seqs = 1);
// "KV cache: 52.0 MiB for 32768 positions (F16; 22 of 26 layers keep a 1024-position ring)": for load messages.
std::string describe_cache(const Engine& engine, const SeqCache& cache, int64_t n_seqs = 1);

}  // namespace gemma
