// KV cache allocation and views.
#include "model/kv_cache.h"

#include "core/error.h"

namespace gemma {

KvCache::KvCache(const ModelConfig& c, int64_t n_ctx, TypeId type) : type_(type) {
    if (!ops::kv_type_supported(type))
        throw_error(std::string("KV cache type ") + type_name(type) + " is not supported (use f16, f32 or q8_0)");
    if (type == TypeId::Q8_0 && c.head_dim % 32 != 0)
        throw_error("KV cache type q8_0 needs a head size that is a multiple of 32 (it is " +
                    std::to_string(c.head_dim) + ")");
    if (n_ctx <= 0) throw_error("context size must be positive");
    shape_.n_head = c.n_head;
    shape_.n_head_kv = c.n_head_kv;
    shape_.head_dim = c.head_dim;
    shape_.n_ctx = (n_ctx + 31) / 32 * 32;
    n_layer_ = c.n_layer;
    layer_bytes_ = (ops::kv_layer_bytes(type, shape_) + 63) / 64 * 64;
    const size_t total = layer_bytes_ * static_cast<size_t>(n_layer_);
    k_.reset(static_cast<uint8_t*>(std::aligned_alloc(64, total)));
    v_.reset(static_cast<uint8_t*>(std::aligned_alloc(64, total)));
    if (!k_ || !v_) throw_error("cannot allocate a KV cache of " + std::to_string(2 * total >> 20) + " MiB");
}

ops::KvLayerView KvCache::layer(int64_t il) const {
    ops::KvLayerView v;
    v.type = type_;
    v.k = k_.get() + layer_bytes_ * static_cast<size_t>(il);
    v.v = v_.get() + layer_bytes_ * static_cast<size_t>(il);
    return v;
}

void KvCache::set_n_past(int64_t n) {
    if (n < 0 || n > shape_.n_ctx) throw_error("KV cache position " + std::to_string(n) + " out of range");
    n_past_ = n;
}

}  // namespace gemma
