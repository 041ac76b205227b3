// Packing of row groups into the interleaved layouts, and the scalar reference gemm over packed groups.
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "kernels/kernels_internal.h"
#include "kernels/packed.h"

namespace gemma::kernels::detail {
namespace {

constexpr int kRows = 8;

template <typename Group, typename Block>
void pack(int64_t n, const void* src, size_t row_bytes, void* dst) {
    constexpr int kWords = static_cast<int>(sizeof(Block{}.qs)) / 4;
    auto* g = static_cast<Group*>(dst);
    const auto* s = static_cast<const uint8_t*>(src);
    for (int64_t b = 0; b < n / 32; ++b) {
        Group out;
        for (int r = 0; r < kRows; ++r) {
            Block in;
            std::memcpy(&in, s + static_cast<size_t>(r) * row_bytes + static_cast<size_t>(b) * sizeof(Block), sizeof in);
            out.d[r] = in.d;
            for (int k = 0; k < kWords; ++k) std::memcpy(&out.qs[32 * k + 4 * r], &in.qs[4 * k], 4);
        }
        std::memcpy(g + b, &out, sizeof out);
    }
}

// The packed arithmetic, which every ISA reproduces bit for bit: per (row, token) one exact integer dot per
// block, then acc = fma(float(isum), d_w * d_a, acc) over blocks in order. Exact integers make the SIMD
// lanes' summation order irrelevant; only the float steps are fixed, and they are the same here.
int32_t isum_q4_0(const block_q4_0x8& g, int r, const block_q8_0& a) {
    int32_t s = 0;
    for (int k = 0; k < 4; ++k)
        for (int j = 0; j < 4; ++j) {
            const uint8_t q = g.qs[32 * k + 4 * r + j];
            s += ((q & 0xF) - 8) * a.qs[4 * k + j] + ((q >> 4) - 8) * a.qs[16 + 4 * k + j];
        }
    return s;
}

int32_t isum_q8_0(const block_q8_0x8& g, int r, const block_q8_0& a) {
    int32_t s = 0;
    for (int k = 0; k < 8; ++k)
        for (int j = 0; j < 4; ++j) s += g.qs[32 * k + 4 * r + j] * a.qs[4 * k + j];
    return s;
}

template <typename Group, int32_t (*Isum)(const Group&, int, const block_q8_0&)>
void gemm_packed_ref(int64_t n, const void* W, size_t wrb, int64_t r0, int64_t r1, const void* act, size_t arb,
                     int64_t n_tok, float* out, int64_t stride) {
    const int64_t nb = n / 32;
    for (int64_t t = 0; t < n_tok; ++t) {
        const auto* a = reinterpret_cast<const block_q8_0*>(static_cast<const uint8_t*>(act) + t * arb);
        for (int64_t g0 = r0; g0 < r1; g0 += kRows) {
            const auto* g = reinterpret_cast<const Group*>(static_cast<const uint8_t*>(W) + g0 * wrb);
            for (int r = 0; r < kRows; ++r) {
                float acc = 0.0f;
                for (int64_t b = 0; b < nb; ++b) {
                    const float d = fp16_to_fp32(g[b].d[r]) * fp16_to_fp32(a[b].d);
                    acc = std::fma(static_cast<float>(Isum(g[b], r, a[b])), d, acc);
                }
                out[t * stride + g0 + r] = acc;
            }
        }
    }
}

}  // namespace

void fill_ref_packed(KernelTable& t) {
    t.pack[idx(TypeId::Q4_0)] = pack<block_q4_0x8, block_q4_0>;
    t.pack[idx(TypeId::Q8_0)] = pack<block_q8_0x8, block_q8_0>;
    t.gemm_packed[idx(TypeId::Q4_0)] = gemm_packed_ref<block_q4_0x8, isum_q4_0>;
    t.gemm_packed[idx(TypeId::Q8_0)] = gemm_packed_ref<block_q8_0x8, isum_q8_0>;
}

}  // namespace gemma::kernels::detail
