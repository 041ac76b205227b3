// Run-time ISA selection (CPUID, GEMMA_ISA override) and routing of the public kernel API through per-ISA tables.
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/cpu.h"
#include "core/error.h"
#include "kernels/kernels.h"
#include "kernels/kernels_internal.h"

namespace gemma::kernels {
namespace {

using detail::KernelTable;

// AVX-VNNI (the VEX-encoded vpdpbusd): CPUID leaf 7 sub-leaf 1, EAX bit 4. Read directly: GCC 12's
// __builtin_cpu_supports("avxvnni") answers false on CPUs that have it.
bool cpu_has_avxvnni() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return cpu_has_avx2() && __get_cpuid_count(7, 1, &a, &b, &c, &d) != 0 && (a & (1u << 4)) != 0;
}

// The AVX-512 level: F (which the builtin reports only where the OS saves the zmm state), BW, VL and VNNI, on a
// CPU that also has everything the AVX2 kernels it keeps need.
bool cpu_has_avx512() {
    return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}

// AVX512-BF16 (CPUID leaf 7 subleaf 1, EAX bit 5): a feature within the AVX-512 level, not a level of its own,
// because its kernel gives the same bits as the plain AVX-512 one.
bool cpu_has_avx512bf16() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return cpu_has_avx512() && __get_cpuid_count(7, 1, &a, &b, &c, &d) != 0 && (a & (1u << 5)) != 0;
}

// AVX512-VBMI (CPUID leaf 7, ECX bit 1): byte permutes and multishift, for the IQ3 grid decoders.
bool cpu_has_avx512vbmi() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return cpu_has_avx512() && __get_cpuid_count(7, 0, &a, &b, &c, &d) != 0 && (c & (1u << 1)) != 0;
}

// The AMX level: AMX-TILE and AMX-INT8 (CPUID leaf 7 EDX bits 24, 25) on the AVX-512 level, and Linux's leave to use
// the tile data state, which it grants per process on request (arch_prctl ARCH_REQ_XCOMP_PERM for XTILEDATA); a
// tile instruction without it is killed with SIGILL. Asked once; a refusal (an old kernel, a VM) means no AMX.
bool cpu_has_amx() {
    static const bool ok = [] {
        unsigned a = 0, b = 0, c = 0, d = 0;
        if (!cpu_has_avx512() || __get_cpuid_count(7, 0, &a, &b, &c, &d) == 0) return false;
        if ((d & (1u << 24)) == 0 || (d & (1u << 25)) == 0) return false;
        constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
        return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
    }();
    return ok;
}

// Whether two BF16 vec_dot kernels give the same bits on deterministic rows whose products span many magnitudes
// (rows of 96 and 2048: whole 32-element steps and long sums). vdpbf16ps is documented as two rounded FMAs per lane
// (odd element, then even); where a CPU rounds differently the widening kernel stays, so the AVX-512 level's BF16
// results never depend on whether the CPU has AVX512-BF16.
bool same_bf16_bits(detail::VecDotFn a, detail::VecDotFn b) {
    static uint16_t w[2048], x[2048];
    uint32_t state = 12345;
    auto next = [&state] {
        state = state * 1664525u + 1013904223u;
        return state;
    };
    // Sign, an exponent within +-20 of 1.0 and a random 7-bit mantissa: normal numbers only.
    auto next_bf16 = [&next] {
        const uint32_t r = next();
        return static_cast<uint16_t>(((r >> 31) << 15) | ((107 + (r >> 8) % 41) << 7) | (r & 0x7F));
    };
    for (int trial = 0; trial < 64; ++trial) {
        for (int i = 0; i < 2048; ++i) {
            w[i] = next_bf16();
            x[i] = next_bf16();
        }
        for (int64_t n : {96, 2048}) {
            float sa = 0, sb = 0;
            a(n, &sa, w, x);
            b(n, &sb, w, x);
            if (std::memcmp(&sa, &sb, sizeof sa) != 0) return false;
        }
    }
    return true;
}

struct Tables {
    KernelTable ref;
    KernelTable avx2;
    KernelTable vnni;
    KernelTable avx512;
    KernelTable amx;
    Tables() {
        detail::fill_ref_convert(ref);
        detail::fill_ref_float(ref);
        detail::fill_ref_legacy(ref);
        detail::fill_ref_kquants(ref);
        detail::fill_ref_iq(ref);
        detail::fill_ref_packed(ref);
        avx2 = ref;
        // Only register AVX2 code on a CPU that can run it; the fill functions themselves execute no AVX2.
        if (cpu_has_avx2()) {
            detail::fill_avx2_convert(avx2);
            detail::fill_avx2_float(avx2);
            detail::fill_avx2_legacy(avx2);
            detail::fill_avx2_kquants(avx2);
            detail::fill_avx2_iq(avx2);
            detail::fill_avx2_packed(avx2);
        }
        vnni = avx2;
        if (cpu_has_avxvnni()) detail::fill_vnni_packed(vnni);
        // AVX-512 CPUs without AVX-VNNI exist (Ice Lake, Cascade Lake): start from AVX2's table, not VNNI's.
        avx512 = avx2;
        if (cpu_has_avx512()) {
            detail::fill_avx512_packed(avx512);
            detail::fill_avx512_float(avx512);
            if (cpu_has_avx512bf16()) {
                KernelTable dot = avx512;
                detail::fill_avx512bf16_float(dot);
                const size_t b = detail::idx(TypeId::BF16);
                if (same_bf16_bits(avx512.vec_dot[b], dot.vec_dot[b])) {
                    avx512.vec_dot[b] = dot.vec_dot[b];
                    avx512.gemm[b] = dot.gemm[b];
                }
            }
            if (cpu_has_avx512vbmi()) detail::fill_avx512vbmi_iq3(avx512);
        }
        amx = avx512;
        if (cpu_has_amx()) detail::fill_amx_packed(amx);
    }
};

Tables& mutable_tables() {
    static Tables t;
    return t;
}
const Tables& tables() { return mutable_tables(); }

Isa initial_isa() {
    const char* env = std::getenv("GEMMA_ISA");
    if (env != nullptr && *env != '\0') {
        const std::string v = env;
        if (v == "ref") return Isa::Ref;
        if (v == "avx2") {
            if (!cpu_has_avx2()) throw_error("GEMMA_ISA=avx2: this CPU does not support AVX2+FMA+F16C");
            return Isa::Avx2;
        }
        if (v == "avx2vnni") {
            if (!cpu_has_avxvnni()) throw_error("GEMMA_ISA=avx2vnni: this CPU does not support AVX2+FMA+F16C+AVX-VNNI");
            return Isa::Avx2Vnni;
        }
        if (v == "avx512") {
            if (!cpu_has_avx512())
                throw_error("GEMMA_ISA=avx512: this CPU does not support AVX2+FMA+F16C+AVX512F+BW+VL+VNNI");
            return Isa::Avx512;
        }
        if (v == "amx") {
            if (!cpu_has_amx())
                throw_error("GEMMA_ISA=amx: this CPU (or its OS) does not support AVX-512 plus AMX-TILE and AMX-INT8");
            return Isa::Amx;
        }
        throw_error("GEMMA_ISA=" + v + ": unknown ISA (expected ref, avx2, avx2vnni, avx512 or amx)");
    }
    return cpu_has_amx() ? Isa::Amx : cpu_has_avx512() ? Isa::Avx512 : cpu_has_avxvnni() ? Isa::Avx2Vnni : cpu_has_avx2() ? Isa::Avx2 : Isa::Ref;
}

std::atomic<int>& isa_state() {
    static std::atomic<int> s{static_cast<int>(initial_isa())};
    return s;
}

const KernelTable& table() {
    switch (static_cast<Isa>(isa_state().load(std::memory_order_relaxed))) {
        case Isa::Amx: return tables().amx;
        case Isa::Avx512: return tables().avx512;
        case Isa::Avx2Vnni: return tables().vnni;
        case Isa::Avx2: return tables().avx2;
        case Isa::Ref: break;
    }
    return tables().ref;
}

// Loop over vec_dot: the per-pair arithmetic is the single-row kernel's, so any row split gives the same bits.
void gemm_by_vec_dot(detail::VecDotFn dot, int64_t n, const void* W, size_t w_row_bytes, int64_t r0, int64_t r1,
                     const void* act, size_t act_row_bytes, int64_t n_tok, float* out, int64_t out_stride) {
    const auto* wb = static_cast<const uint8_t*>(W);
    const auto* ab = static_cast<const uint8_t*>(act);
    for (int64_t t = 0; t < n_tok; ++t)
        for (int64_t r = r0; r < r1; ++r)
            dot(n, out + t * out_stride + r, wb + static_cast<size_t>(r) * w_row_bytes,
                ab + static_cast<size_t>(t) * act_row_bytes);
}

[[noreturn]] void no_kernel(const char* what, TypeId wt) {
    throw_error(std::string("kernels: no ") + what + " for weight type " + type_name(wt));
}

}  // namespace

detail::KernelTable& detail::table_for_tests(Isa isa) {
    switch (isa) {
        case Isa::Amx: return mutable_tables().amx;
        case Isa::Avx512: return mutable_tables().avx512;
        case Isa::Avx2Vnni: return mutable_tables().vnni;
        case Isa::Avx2: return mutable_tables().avx2;
        case Isa::Ref: break;
    }
    return mutable_tables().ref;
}

bool avx512_bf16_supported() { return cpu_has_avx512bf16(); }

Isa active_isa() { return static_cast<Isa>(isa_state().load(std::memory_order_relaxed)); }

bool isa_supported(Isa isa) {
    switch (isa) {
        case Isa::Ref: return true;
        case Isa::Avx2: return cpu_has_avx2();
        case Isa::Avx2Vnni: return cpu_has_avxvnni();
        case Isa::Avx512: return cpu_has_avx512();
        case Isa::Amx: return cpu_has_amx();
    }
    return false;
}

bool set_isa(Isa isa) {
    if (!isa_supported(isa)) return false;
    isa_state().store(static_cast<int>(isa), std::memory_order_relaxed);
    return true;
}

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::Ref: return "ref";
        case Isa::Avx2: return "avx2";
        case Isa::Avx2Vnni: return "avx2vnni";
        case Isa::Avx512: return "avx512";
        case Isa::Amx: return "amx";
    }
    return "?";
}

size_t act_row_size(TypeId wt, int64_t n) { return row_size(type_traits(wt).vec_dot_type, n); }

void convert_act_row(TypeId wt, const float* x, void* dst, int64_t n) {
    const TypeId at = type_traits(wt).vec_dot_type;
    const detail::ConvertFn f = table().convert[detail::idx(at)];
    if (f == nullptr) no_kernel("activation conversion", wt);
    GEMMA_ASSERT(n % type_traits(at).block_size == 0);
    f(x, dst, n);
}

void vec_dot(TypeId wt, int64_t n, float* s, const void* w, const void* a) {
    const detail::VecDotFn f = table().vec_dot[detail::idx(wt)];
    if (f == nullptr) no_kernel("vec_dot", wt);
    GEMMA_ASSERT(n % type_traits(wt).block_size == 0);  // kernels only see whole blocks
    f(n, s, w, a);
}

void gemm(TypeId wt, int64_t n, const void* W, size_t w_row_bytes, int64_t r0, int64_t r1, const void* act,
          size_t act_row_bytes, int64_t n_tok, float* out, int64_t out_stride) {
    const KernelTable& t = table();
    if (r0 >= r1 || n_tok <= 0) return;
    GEMMA_ASSERT(n % type_traits(wt).block_size == 0);
    if (const detail::GemmFn g = t.gemm[detail::idx(wt)]) {
        g(n, W, w_row_bytes, r0, r1, act, act_row_bytes, n_tok, out, out_stride);
        return;
    }
    const detail::VecDotFn f = t.vec_dot[detail::idx(wt)];
    if (f == nullptr) no_kernel("gemm", wt);
    gemm_by_vec_dot(f, n, W, w_row_bytes, r0, r1, act, act_row_bytes, n_tok, out, out_stride);
}

bool packable(TypeId wt, int64_t n) {
    return tables().ref.pack[detail::idx(wt)] != nullptr && n > 0 && n <= kMaxPackedRow &&
           n % type_traits(wt).block_size == 0;
}

void pack_group(TypeId wt, int64_t n, const void* src, size_t row_bytes, void* dst) {
    const detail::PackFn f = tables().ref.pack[detail::idx(wt)];
    if (f == nullptr) no_kernel("packed layout", wt);
    GEMMA_ASSERT(n % type_traits(wt).block_size == 0);
    f(n, src, row_bytes, dst);
}

void gemm_packed(TypeId wt, int64_t n, const void* W, size_t w_row_bytes, int64_t r0, int64_t r1, const void* act,
                 size_t act_row_bytes, int64_t n_tok, float* out, int64_t out_stride) {
    if (r0 >= r1 || n_tok <= 0) return;
    const detail::GemmFn g = table().gemm_packed[detail::idx(wt)];
    if (g == nullptr) no_kernel("packed gemm", wt);
    GEMMA_ASSERT(packable(wt, n) && r0 % kPackRows == 0 && r1 % kPackRows == 0);
    g(n, W, w_row_bytes, r0, r1, act, act_row_bytes, n_tok, out, out_stride);
}

}  // namespace gemma::kernels
