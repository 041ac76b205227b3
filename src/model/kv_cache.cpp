// KV cache allocation, per-layer ring sizes, and what a rollback may reuse.
#include "model/kv_cache.h"

#include <algorithm>

#include "core/error.h"

namespace gemma {
namespace {

int64_t round_up(int64_t n, int64_t a) { return (n + a - 1) / a * a; }

struct Plan {
    int64_t n_ctx = 0, ring = 0, window = 0;
    std::vector<int64_t> cells;  // per layer
    size_t layer_bytes(size_t il, TypeId t, const ops::AttnShape& s) const {
        return (ops::kv_layer_bytes(t, s, cells[il]) + 63) / 64 * 64;
    }
};

Plan plan(const ModelConfig& c, int64_t n_ctx, int64_t n_batch) {
    if (n_ctx <= 0) throw_error("context size must be positive");
    if (n_ctx > (int64_t{1} << 30)) throw_error("context size " + std::to_string(n_ctx) + " is too large");
    Plan p;
    p.n_ctx = round_up(n_ctx, 32);
    // Cells come in whole attention tiles, so an aligned tile of positions is a contiguous run of cells.
    const int64_t full = round_up(p.n_ctx, ops::kAttnTile);
    p.window = c.n_swa;
    if (c.any_sliding()) p.ring = std::min(full, round_up(c.n_swa + std::max<int64_t>(n_batch, 1), ops::kAttnTile));
    for (const LayerConfig& l : c.layers) p.cells.push_back(l.sliding ? p.ring : full);
    return p;
}

void check_type(const ModelConfig& c, TypeId type) {
    if (!ops::kv_type_supported(type))
        throw_error(std::string("KV cache type ") + type_name(type) + " is not supported (use f16, f32 or q8_0)");
    if (type == TypeId::Q8_0 && c.head_dim % 32 != 0)
        throw_error("KV cache type q8_0 needs a head size that is a multiple of 32 (it is " +
                    std::to_string(c.head_dim) + ")");
}

ops::AttnShape shape_of(const ModelConfig& c) { return {c.n_head, c.n_head_kv, c.head_dim}; }

}  // namespace

size_t KvCache::bytes_for(const ModelConfig& c, int64_t n_ctx, TypeId type, int64_t n_batch) {
    check_type(c, type);
    const Plan p = plan(c, n_ctx, n_batch);
    size_t total = 0;
    for (size_t il = 0; il < p.cells.size(); ++il) total += 2 * p.layer_bytes(il, type, shape_of(c));
    return total;
}

KvCache::KvCache(const ModelConfig& c, int64_t n_ctx, TypeId type, int64_t n_batch) : type_(type) {
    check_type(c, type);
    const Plan p = plan(c, n_ctx, n_batch);
    shape_ = shape_of(c);
    n_ctx_ = p.n_ctx;
    n_batch_ = std::max<int64_t>(n_batch, 1);
    window_ = p.window;
    ring_ = p.ring;
    size_t off = 0;
    for (size_t il = 0; il < p.cells.size(); ++il) {
        layers_.push_back({off, p.cells[il]});
        off += p.layer_bytes(il, type, shape_);
    }
    bytes_ = 2 * off;
    k_.reset(static_cast<uint8_t*>(std::aligned_alloc(64, std::max<size_t>(off, 64))));
    v_.reset(static_cast<uint8_t*>(std::aligned_alloc(64, std::max<size_t>(off, 64))));
    if (!k_ || !v_) throw_error("cannot allocate a KV cache of " + std::to_string(bytes_ >> 20) + " MiB");
}

ops::KvLayerView KvCache::layer(int64_t il) const {
    const Layer& l = layers_[static_cast<size_t>(il)];
    ops::KvLayerView v;
    v.type = type_;
    v.k = k_.get() + l.offset;
    v.v = v_.get() + l.offset;
    v.n_cells = l.n_cells;
    return v;
}

void KvCache::set_n_past(int64_t n) {
    if (n < 0 || n > n_ctx_) throw_error("KV cache position " + std::to_string(n) + " out of range");
    n_past_ = n;
    if (n == 0) lo_valid_ = 0;
}

int64_t KvCache::resume_point(int64_t n) const {
    if (n <= 0 || ring_ == 0) return std::max<int64_t>(n, 0);
    // A token at n sees n - window + 1 .. n on the sliding layers; n itself is stored by the same pass.
    return std::max<int64_t>(0, n - window_ + 1) >= lo_valid_ ? n : 0;
}

void KvCache::note_stored(int64_t max_pos) {
    if (ring_ > 0) lo_valid_ = std::max(lo_valid_, max_pos - ring_ + 1);
}

}  // namespace gemma
