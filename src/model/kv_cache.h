// The KV cache of one sequence: per layer K (post-RoPE) and V, F16 by default, F32 or Q8_0 on request.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "model/config.h"
#include "ops/attention.h"

namespace gemma {

class KvCache {
public:
    // n_ctx slots (a multiple of 32 is enforced by rounding up). Throws gemma::Error for an
    // unsupported type or a shape the type cannot hold (Q8_0 needs head_dim % 32 == 0).
    KvCache(const ModelConfig& c, int64_t n_ctx, TypeId type);

    TypeId type() const { return type_; }
    int64_t n_ctx() const { return shape_.n_ctx; }
    const ops::AttnShape& shape() const { return shape_; }
    size_t bytes() const { return 2 * layer_bytes_ * static_cast<size_t>(n_layer_); }
    ops::KvLayerView layer(int64_t il) const;

    // Bookkeeping for the runtime: slots [0, n_past) hold valid entries. forward() advances it; a
    // caller reusing a common prefix sets it back (later slots are simply overwritten).
    int64_t n_past() const { return n_past_; }
    void set_n_past(int64_t n);
    void clear() { n_past_ = 0; }

private:
    struct FreeDeleter { void operator()(uint8_t* p) const { std::free(p); } };
    TypeId type_;
    ops::AttnShape shape_;
    int64_t n_layer_ = 0;
    size_t layer_bytes_ = 0;
    // Left uninitialized: pages are only touched as positions fill, and nothing reads past n_kv.
    std::unique_ptr<uint8_t, FreeDeleter> k_, v_;
    int64_t n_past_ = 0;
};

}  // namespace gemma
