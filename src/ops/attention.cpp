// Attention: K·Q through the matmul kernels per position-aligned tile, softmax (exact or online), V accumulated in f32.
#include "ops/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "core/fp16.h"
#include "kernels/attn_kernels.h"
#include "kernels/kernels.h"

namespace gemma::ops {
namespace {

// Query heads sharing a KV head are processed this many at a time, for this many consecutive query tokens: one
// kernel call reads a tile of keys once for all of them.
constexpr int64_t kSubHeads = 8;
constexpr int64_t kBlockTokens = 8;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// One call's fixed facts.
struct Job {
    const KvLayerView& kv;
    const AttnShape& s;
    const AttnParams& p;
    const float* q;
    int64_t q_stride;
    const int32_t* pos;
    int64_t n_tok;
    int64_t hd, group, sh, n_sub, n_blk;
    size_t k_row, k_head, q_act;
    int64_t span = 0;  // the widest item's visible range: the stride of exact mode's score rows

    int64_t lo(int64_t t) const { return p.window > 0 ? std::max<int64_t>(0, pos[t] - p.window + 1) : 0; }
    int64_t cols_max() const { return kBlockTokens * sh; }
    size_t part_floats() const { return static_cast<size_t>(cols_max() * (2 + hd)); }
    size_t rows_floats() const { return p.flash ? 0 : static_cast<size_t>(cols_max() * span); }
};

// A block of query tokens against one KV head, for a sub-group of its query heads; columns are (token, head).
struct Item {
    int64_t t0, nt, g, h0, nh;
    int64_t lo_min, hi_max;  // union of the tokens' visible positions: [lo_min, hi_max)
    int64_t cols() const { return nt * nh; }
    int64_t seg_begin() const { return lo_min / kAttnSegment; }
    int64_t seg_end() const { return (hi_max - 1) / kAttnSegment + 1; }
};

Item item_of(const Job& J, int64_t i) {
    Item it;
    const int64_t blk = i / (J.s.n_head_kv * J.n_sub);
    it.g = (i / J.n_sub) % J.s.n_head_kv;
    it.h0 = it.g * J.group + (i % J.n_sub) * J.sh;
    it.nh = std::min(J.sh, it.g * J.group + J.group - it.h0);
    it.t0 = blk * kBlockTokens;
    it.nt = std::min(kBlockTokens, J.n_tok - it.t0);
    it.lo_min = std::numeric_limits<int64_t>::max();
    it.hi_max = 0;
    for (int64_t t = it.t0; t < it.t0 + it.nt; ++t) {
        it.lo_min = std::min(it.lo_min, J.lo(t));
        it.hi_max = std::max<int64_t>(it.hi_max, J.pos[t] + 1);
    }
    return it;
}

// Per-thread buffers of one item, carved from one float area.
struct Work {
    uint8_t* qc;      // [cols] converted query rows
    float* scores;    // [cols][kAttnTile] K·Q of one tile
    float* vt;        // [kAttnTile][hd] V rows of one tile in f32
    float* part;      // [cols][2 + hd] (m, l, acc) of one segment (exact mode: acc only)
    float* acc;       // [cols][2 + hd] the segments combined so far
    float* rows;      // exact mode: [cols][span] the scores, then the probabilities, of every visible key
};

size_t qc_floats(const Job& J) { return (static_cast<size_t>(J.cols_max()) * J.q_act + sizeof(float) - 1) / sizeof(float); }

size_t work_floats(const Job& J, bool with_rows) {
    return qc_floats(J) + static_cast<size_t>(J.cols_max() * kAttnTile + kAttnTile * J.hd) + 2 * J.part_floats() +
           (with_rows ? J.rows_floats() : 0);
}

Work carve(const Job& J, float* base) {
    Work w;
    w.qc = reinterpret_cast<uint8_t*>(base);
    base += qc_floats(J);
    w.scores = base;
    base += J.cols_max() * kAttnTile;
    w.vt = base;
    base += kAttnTile * J.hd;
    w.part = base;
    w.acc = base + J.part_floats();
    w.rows = base + 2 * J.part_floats();
    return w;
}

void convert_queries(const Job& J, const Item& it, uint8_t* qc) {
    for (int64_t i = 0; i < it.nt; ++i)
        for (int64_t h = 0; h < it.nh; ++h)
            kernels::convert_act_row(J.kv.type, J.q + (it.t0 + i) * J.q_stride + (it.h0 + h) * J.hd,
                                     qc + static_cast<size_t>(i * it.nh + h) * J.q_act, J.hd);
}

void clear_partials(float* part, int64_t cols, int64_t hd) {
    for (int64_t c = 0; c < cols; ++c) {
        float* pc = part + c * (2 + hd);
        pc[0] = kNegInf;
        std::fill(pc + 1, pc + 2 + hd, 0.0f);
    }
}

// Calls fn(r_lo, r_hi) for the aligned tiles of [first, last), clipped to it.
template <typename F>
void for_tiles(int64_t first, int64_t last, F&& fn) {
    for (int64_t t0 = first / kAttnTile * kAttnTile; t0 < last; t0 += kAttnTile)
        fn(std::max(t0, first), std::min(t0 + kAttnTile, last));
}

// scores[c][j - r_lo] = K_j · q_c for the positions of one tile (n_cells is a multiple of the tile, so an aligned
// tile of positions is a contiguous run of cells).
void tile_scores(const Job& J, const Item& it, int64_t r_lo, int64_t r_hi, const Work& w) {
    const uint8_t* k0 = J.kv.k + static_cast<size_t>(r_lo % J.kv.n_cells) * J.k_row + it.g * J.k_head;
    kernels::gemm(J.kv.type, J.hd, k0, J.k_row, 0, r_hi - r_lo, w.qc, J.q_act, it.cols(), w.scores, kAttnTile);
    if (J.p.softcap > 0) {
        const float cap = J.p.softcap, inv_cap = 1.0f / cap;
        for (int64_t c = 0; c < it.cols(); ++c)
            for (int64_t j = 0; j < r_hi - r_lo; ++j) {
                float& s = w.scores[c * kAttnTile + j];
                s = std::tanh(s * inv_cap) * cap;
            }
    }
}

// V rows [r_lo, r_hi) of KV head g as f32, hd floats apart.
void load_v(const Job& J, int64_t g, int64_t r_lo, int64_t r_hi, float* vt) {
    const int64_t hd = J.hd;
    for (int64_t r = r_lo; r < r_hi; ++r) {
        const uint8_t* src = J.kv.v + static_cast<size_t>(r % J.kv.n_cells) * J.k_row + g * J.k_head;
        float* dst = vt + (r - r_lo) * hd;
        switch (J.kv.type) {
            case TypeId::F32: std::memcpy(dst, src, static_cast<size_t>(hd) * sizeof(float)); break;
            case TypeId::F16: kernels::f16_to_f32(reinterpret_cast<const uint16_t*>(src), dst, hd); break;
            default: type_traits(J.kv.type).dequantize_row(src, dst, hd);
        }
    }
}

// The visible part of [r_lo, r_hi) for token t.
std::pair<int64_t, int64_t> visible(const Job& J, int64_t t, int64_t r_lo, int64_t r_hi) {
    return {std::max(J.lo(t), r_lo), std::min<int64_t>(J.pos[t] + 1, r_hi)};
}

// ---- flash numerics: per column the running max m, the sum l of exp(s - m) and the accumulated exp(s - m)·v, over
// the keys of one segment in ascending positions; segments are folded in order.
void flash_segment(const Job& J, const Item& it, int64_t s0, int64_t s1, const Work& w) {
    const int64_t hd = J.hd;
    clear_partials(w.part, it.cols(), hd);
    for_tiles(std::max(s0, it.lo_min), std::min(s1, it.hi_max), [&](int64_t r_lo, int64_t r_hi) {
        tile_scores(J, it, r_lo, r_hi, w);
        load_v(J, it.g, r_lo, r_hi, w.vt);
        for (int64_t i = 0; i < it.nt; ++i) {
            const auto [v_lo, v_hi] = visible(J, it.t0 + i, r_lo, r_hi);
            for (int64_t h = 0; h < it.nh && v_lo < v_hi; ++h) {
                const int64_t c = i * it.nh + h;
                float* sc = w.scores + c * kAttnTile + (v_lo - r_lo);
                const int64_t n = v_hi - v_lo;
                const float mx = kernels::max_of(sc, n);
                float* pc = w.part + c * (2 + hd);
                if (mx > pc[0]) {
                    const float corr = kernels::exp_f32(pc[0] - mx);
                    pc[1] *= corr;
                    for (int64_t d = 0; d < hd; ++d) pc[2 + d] *= corr;
                    pc[0] = mx;
                }
                pc[1] += static_cast<float>(kernels::exp_sub_sum(sc, n, pc[0]));
                kernels::accumulate_v(pc + 2, sc, w.vt + (v_lo - r_lo) * hd, hd, n, hd);
            }
        }
    });
}

// acc ⊕= part, column by column; an empty side (l = 0) leaves the other unchanged.
void flash_fold(float* acc, const float* part, int64_t cols, int64_t hd) {
    for (int64_t c = 0; c < cols; ++c) {
        float* a = acc + c * (2 + hd);
        const float* b = part + c * (2 + hd);
        if (b[1] == 0.0f) continue;
        if (a[1] == 0.0f) {
            std::copy(b, b + 2 + hd, a);
            continue;
        }
        const float m = std::max(a[0], b[0]);
        const float fa = kernels::exp_f32(a[0] - m), fb = kernels::exp_f32(b[0] - m);
        a[0] = m;
        a[1] = a[1] * fa + b[1] * fb;
        for (int64_t d = 0; d < hd; ++d) a[2 + d] = a[2 + d] * fa + b[2 + d] * fb;
    }
}

// ---- exact numerics (llama.cpp without flash attention): every visible score first, then per column one softmax
// (f32 max, exp, sum in double, scaled by (float)(1/sum)), probabilities rounded as the V·p matmul's activation
// conversion rounds them, then V accumulated per segment and the segments summed in order. The element-wise steps
// are kernels (kernels/attn_kernels.h), the same bits on every ISA.
float* score_row(const Job& J, const Work& w, int64_t c) { return w.rows + c * J.span; }

void exact_scores(const Job& J, const Item& it, int64_t s0, int64_t s1, const Work& w) {
    for_tiles(std::max(s0, it.lo_min), std::min(s1, it.hi_max), [&](int64_t r_lo, int64_t r_hi) {
        tile_scores(J, it, r_lo, r_hi, w);
        for (int64_t i = 0; i < it.nt; ++i) {
            const auto [v_lo, v_hi] = visible(J, it.t0 + i, r_lo, r_hi);
            for (int64_t h = 0; h < it.nh && v_lo < v_hi; ++h) {
                const int64_t c = i * it.nh + h;
                std::copy(w.scores + c * kAttnTile + (v_lo - r_lo), w.scores + c * kAttnTile + (v_hi - r_lo),
                          score_row(J, w, c) + (v_lo - it.lo_min));
            }
        }
    });
}

void exact_softmax(const Job& J, const Item& it, const Work& w) {
    for (int64_t i = 0; i < it.nt; ++i) {
        const auto [v_lo, v_hi] = visible(J, it.t0 + i, it.lo_min, it.hi_max);
        for (int64_t h = 0; h < it.nh; ++h) {
            float* x = score_row(J, w, i * it.nh + h) + (v_lo - it.lo_min);
            const int64_t n = v_hi - v_lo;
            const float mx = kernels::max_of(x, n);
            const double sum = kernels::exp_sub_sum(x, n, mx);
            kernels::scale_round(x, n, static_cast<float>(1.0 / sum), J.kv.type == TypeId::F16);
        }
    }
}

void exact_accumulate(const Job& J, const Item& it, int64_t s0, int64_t s1, const Work& w) {
    const int64_t hd = J.hd;
    for (int64_t c = 0; c < it.cols(); ++c) std::fill(w.part + c * (2 + hd), w.part + (c + 1) * (2 + hd), 0.0f);
    for_tiles(std::max(s0, it.lo_min), std::min(s1, it.hi_max), [&](int64_t r_lo, int64_t r_hi) {
        load_v(J, it.g, r_lo, r_hi, w.vt);
        for (int64_t i = 0; i < it.nt; ++i) {
            const auto [v_lo, v_hi] = visible(J, it.t0 + i, r_lo, r_hi);
            for (int64_t h = 0; h < it.nh && v_lo < v_hi; ++h) {
                const int64_t c = i * it.nh + h;
                const float* p = score_row(J, w, c) + (v_lo - it.lo_min);
                kernels::accumulate_v(w.part + c * (2 + hd) + 2, p, w.vt + (v_lo - r_lo) * hd, hd, v_hi - v_lo, hd);
            }
        }
    });
}

void exact_add(float* acc, const float* part, int64_t cols, int64_t hd) {
    for (int64_t c = 0; c < cols; ++c)
        for (int64_t d = 2; d < 2 + hd; ++d) acc[c * (2 + hd) + d] += part[c * (2 + hd) + d];
}

void write_out(const Job& J, const Item& it, const float* acc, float* out, int64_t out_stride) {
    for (int64_t i = 0; i < it.nt; ++i)
        for (int64_t h = 0; h < it.nh; ++h) {
            const float* a = acc + (i * it.nh + h) * (2 + J.hd);
            float* o = out + (it.t0 + i) * out_stride + (it.h0 + h) * J.hd;
            if (J.p.flash) {
                const float inv = 1.0f / a[1];
                for (int64_t d = 0; d < J.hd; ++d) o[d] = a[2 + d] * inv;
            } else {
                std::copy(a + 2, a + 2 + J.hd, o);
            }
        }
}

}  // namespace

bool kv_type_supported(TypeId t) { return t == TypeId::F32 || t == TypeId::F16 || t == TypeId::Q8_0; }

size_t kv_layer_bytes(TypeId t, const AttnShape& s, int64_t n_cells) {
    return static_cast<size_t>(n_cells) * row_size(t, s.n_head_kv * s.head_dim);
}

void kv_store(const KvLayerView& kv, const AttnShape& s, int32_t pos, const float* k, const float* v) {
    GEMMA_ASSERT(pos >= 0 && kv.n_cells > 0);
    const int64_t n = s.n_head_kv * s.head_dim;
    const size_t row = row_size(kv.type, n);
    const size_t cell = static_cast<size_t>(pos % kv.n_cells);
    // The cache is K·Q's "weight" side: storing it in the weight layout of its type lets the activation
    // converter produce exactly what ggml's f32 -> cache-type copy writes.
    kernels::convert_act_row(kv.type, k, kv.k + cell * row, n);
    kernels::convert_act_row(kv.type, v, kv.v + cell * row, n);
}

void AttnScratch::reserve(int n_threads, size_t per_thread, size_t shared) {
    if (per_thread_.size() < static_cast<size_t>(n_threads)) per_thread_.resize(static_cast<size_t>(n_threads));
    for (auto& v : per_thread_)
        if (v.size() < per_thread) v.resize(per_thread);
    if (shared_.size() < shared) shared_.resize(shared);
}

float* AttnScratch::thread_floats(int thread, size_t n) {
    auto& v = per_thread_[static_cast<size_t>(thread)];
    GEMMA_ASSERT(v.size() >= n);
    return v.data();
}

float* AttnScratch::shared_floats(size_t n) {
    GEMMA_ASSERT(shared_.size() >= n);
    return shared_.data();
}

size_t AttnScratch::bytes() const {
    size_t b = shared_.size();
    for (const auto& v : per_thread_) b += v.size();
    return b * sizeof(float);
}

void attention(const KvLayerView& kv, const AttnShape& s, const AttnParams& p, const float* q, int64_t q_stride,
               const int32_t* pos, int64_t n_tok, float* out, int64_t out_stride, AttnScratch& scratch,
               ThreadPool& pool) {
    if (n_tok <= 0) return;
    const int64_t sh = std::min<int64_t>(kSubHeads, s.n_head / s.n_head_kv);
    Job J{kv, s, p, q, q_stride, pos, n_tok, s.head_dim, s.n_head / s.n_head_kv, sh, 0, 0,
          row_size(kv.type, s.n_head_kv * s.head_dim), row_size(kv.type, s.head_dim),
          kernels::act_row_size(kv.type, s.head_dim)};
    J.n_sub = (J.group + sh - 1) / sh;
    J.n_blk = (n_tok + kBlockTokens - 1) / kBlockTokens;
    const int64_t n_items = J.n_blk * s.n_head_kv * J.n_sub;
    int64_t max_pos = 0;
    for (int64_t t = 0; t < n_tok; ++t) {
        GEMMA_ASSERT(pos[t] >= 0);
        max_pos = std::max<int64_t>(max_pos, pos[t]);
    }
    for (int64_t i = 0; i < n_items; i += s.n_head_kv * J.n_sub) {
        const Item it = item_of(J, i);
        J.span = std::max(J.span, it.hi_max - it.lo_min);
    }
    const int64_t n_seg = max_pos / kAttnSegment + 1;
    const int n_threads = pool.size();
    const bool by_item = p.force_mode == 1 || (p.force_mode == 0 && (n_items >= 2 * n_threads || n_seg == 1));

    // Growing happens here, outside the workers, and only until the largest shape has been seen.
    const size_t per_thread = work_floats(J, by_item);
    const size_t parts = by_item ? 0 : static_cast<size_t>(n_items * n_seg) * J.part_floats();
    scratch.reserve(n_threads, per_thread, by_item ? 0 : parts + static_cast<size_t>(n_items) * J.rows_floats());

    if (by_item) {
        // Enough items to keep every thread busy: each runs its own segments, in order.
        pool.parallel_for(n_items, [&](int64_t i, int thread) {
            const Item it = item_of(J, i);
            const Work w = carve(J, scratch.thread_floats(thread, per_thread));
            convert_queries(J, it, w.qc);
            clear_partials(w.acc, it.cols(), J.hd);
            if (p.flash) {
                for (int64_t k = it.seg_begin(); k < it.seg_end(); ++k) {
                    flash_segment(J, it, k * kAttnSegment, (k + 1) * kAttnSegment, w);
                    flash_fold(w.acc, w.part, it.cols(), J.hd);
                }
            } else {
                exact_scores(J, it, 0, it.hi_max, w);
                exact_softmax(J, it, w);
                for (int64_t k = it.seg_begin(); k < it.seg_end(); ++k) {
                    exact_accumulate(J, it, k * kAttnSegment, (k + 1) * kAttnSegment, w);
                    exact_add(w.acc, w.part, it.cols(), J.hd);
                }
            }
            write_out(J, it, w.acc, out, out_stride);
        });
        return;
    }
    // Few items (decoding a token, a small model's single KV head): segments become work items of their own; each
    // item then combines its segments in the same order as above, so the bits are the same.
    float* shared = scratch.shared_floats(parts + static_cast<size_t>(n_items) * J.rows_floats());
    auto part_of = [&](int64_t i, int64_t k) { return shared + static_cast<size_t>(i * n_seg + k) * J.part_floats(); };
    auto work_of = [&](int64_t i, int thread) {
        Work w = carve(J, scratch.thread_floats(thread, per_thread));
        w.rows = shared + parts + static_cast<size_t>(i) * J.rows_floats();
        return w;
    };
    auto per_segment = [&](auto&& fn) {
        pool.parallel_for(n_items * n_seg, [&](int64_t ik, int thread) {
            const int64_t i = ik / n_seg, k = ik % n_seg;
            const Item it = item_of(J, i);
            if (k < it.seg_begin() || k >= it.seg_end()) return;
            Work w = work_of(i, thread);
            w.part = part_of(i, k);
            convert_queries(J, it, w.qc);
            fn(it, k * kAttnSegment, (k + 1) * kAttnSegment, w);
        });
    };
    if (p.flash) {
        per_segment([&](const Item& it, int64_t s0, int64_t s1, const Work& w) { flash_segment(J, it, s0, s1, w); });
    } else {
        per_segment([&](const Item& it, int64_t s0, int64_t s1, const Work& w) { exact_scores(J, it, s0, s1, w); });
        pool.parallel_for(n_items, [&](int64_t i, int thread) { exact_softmax(J, item_of(J, i), work_of(i, thread)); });
        per_segment([&](const Item& it, int64_t s0, int64_t s1, const Work& w) { exact_accumulate(J, it, s0, s1, w); });
    }
    pool.parallel_for(n_items, [&](int64_t i, int thread) {
        const Item it = item_of(J, i);
        const Work w = work_of(i, thread);
        clear_partials(w.acc, it.cols(), J.hd);
        for (int64_t k = it.seg_begin(); k < it.seg_end(); ++k) {
            if (p.flash) flash_fold(w.acc, part_of(i, k), it.cols(), J.hd);
            else exact_add(w.acc, part_of(i, k), it.cols(), J.hd);
        }
        write_out(J, it, w.acc, out, out_stride);
    });
}

}  // namespace gemma::ops
