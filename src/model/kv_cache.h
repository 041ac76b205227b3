// The CPU KV cache of one sequence: per layer K (post-RoPE) and V rows, F16 by default, F32 or Q8_0 on request;
// sliding-window layers keep a ring of window + batch positions, global layers the whole context.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "model/config.h"
#include "model/engine.h"
#include "ops/attention.h"

namespace gemma {

class KvCache final : public SeqCache {
public:
    // n_ctx positions (rounded up to a multiple of 32). n_batch is the most positions one pass stores, so a ring
    // of window + n_batch cells never overwrites a key a token of the same pass still sees. Throws gemma::Error
    // for an unsupported type or a shape the type cannot hold (Q8_0 needs head_dim % 32 == 0).
    KvCache(const ModelConfig& c, int64_t n_ctx, TypeId type, int64_t n_batch);
    // Bytes such a cache takes (without allocating it).
    static size_t bytes_for(const ModelConfig& c, int64_t n_ctx, TypeId type, int64_t n_batch);

    TypeId type() const { return type_; }
    int64_t n_batch() const { return n_batch_; }  // the most positions one pass may store
    int64_t n_ctx() const override { return n_ctx_; }
    size_t bytes() const override { return bytes_; }
    const ops::AttnShape& shape() const { return shape_; }
    ops::KvLayerView layer(int64_t il) const;

    int64_t n_past() const override { return n_past_; }
    void set_n_past(int64_t n) override;
    int64_t resume_point(int64_t n) const override;
    // The engine stored positions up to `max_pos`: ring cells older than the ring's length are gone.
    void note_stored(int64_t max_pos);

private:
    struct FreeDeleter { void operator()(uint8_t* p) const { std::free(p); } };
    struct Layer {
        size_t offset = 0;      // into the K and V blocks
        int64_t n_cells = 0;
    };
    TypeId type_;
    ops::AttnShape shape_;
    int64_t n_ctx_ = 0;
    int64_t n_batch_ = 0;
    int64_t window_ = 0;        // the sliding layers' window (0: none)
    int64_t ring_ = 0;          // the sliding layers' cells (0: none)
    std::vector<Layer> layers_;
    size_t bytes_ = 0;
    // Left uninitialized: pages are only touched as positions fill, and nothing reads a cell before it is stored.
    std::unique_ptr<uint8_t, FreeDeleter> k_, v_;
    int64_t n_past_ = 0;
    int64_t lo_valid_ = 0;      // the lowest position the sliding layers' rings still hold
};

}  // namespace gemma
