// The ladder mixes as data: one table of llama-quantize's per-tensor rules (first match wins) plus the fallbacks.
#include "quant/ladder.h"

#include <array>
#include <cctype>
#include <cstdio>

#include "core/error.h"

namespace gemma {
namespace {

const std::vector<LadderType> kLadder = {
    {"F32", Ftype::ALL_F32, TypeId::F32, false, "32-bit float, no quantization"},
    {"F16", Ftype::MOSTLY_F16, TypeId::F16, false, "16-bit float"},
    {"BF16", Ftype::BF16, TypeId::BF16, false, "bfloat16 (lossless for Gemma's published weights)"},
    {"Q8_0", Ftype::Q8_0, TypeId::Q8_0, false, "8.5 bpw, nearly lossless"},
    {"Q6_K", Ftype::Q6_K, TypeId::Q6_K, false, "6.56 bpw"},
    {"Q5_K_M", Ftype::Q5_K_M, TypeId::Q5_K, false, "Q5_K with Q6_K for some attn_v/ffn_down"},
    {"Q5_K_S", Ftype::Q5_K_S, TypeId::Q5_K, false, "Q5_K everywhere"},
    {"Q5_1", Ftype::Q5_1, TypeId::Q5_1, false, "legacy 6.0 bpw"},
    {"Q5_0", Ftype::Q5_0, TypeId::Q5_0, false, "legacy 5.5 bpw"},
    {"Q4_K_M", Ftype::Q4_K_M, TypeId::Q4_K, false, "Q4_K with Q6_K for some attn_v/ffn_down (the usual choice)"},
    {"Q4_K_S", Ftype::Q4_K_S, TypeId::Q4_K, false, "Q4_K, first layers Q5_K"},
    {"Q4_1", Ftype::Q4_1, TypeId::Q4_1, false, "legacy 5.0 bpw"},
    {"Q4_0", Ftype::Q4_0, TypeId::Q4_0, false, "legacy 4.5 bpw, fastest 4-bit"},
    {"IQ4_NL", Ftype::IQ4_NL, TypeId::IQ4_NL, false, "non-linear 4.5 bpw"},
    {"IQ4_XS", Ftype::IQ4_XS, TypeId::IQ4_XS, false, "non-linear 4.25 bpw"},
    {"Q3_K_L", Ftype::Q3_K_L, TypeId::Q3_K, false, "Q3_K with Q5_K attn_v/attn_output/ffn_down"},
    {"Q3_K_M", Ftype::Q3_K_M, TypeId::Q3_K, false, "Q3_K with Q4_K/Q5_K for attention and ffn_down"},
    {"Q3_K_S", Ftype::Q3_K_S, TypeId::Q3_K, false, "Q3_K everywhere"},
    {"IQ3_M", Ftype::IQ3_M, TypeId::IQ3_S, false, "IQ3_S with Q4_K attention/ffn_down in places"},
    {"IQ3_S", Ftype::IQ3_S, TypeId::IQ3_S, false, "3.44 bpw lattice"},
    {"IQ3_XS", Ftype::IQ3_XS, TypeId::IQ3_S, true, "IQ3_S/IQ3_XXS mix (needs --imatrix)"},
    {"IQ3_XXS", Ftype::IQ3_XXS, TypeId::IQ3_XXS, true, "3.06 bpw lattice (needs --imatrix)"},
    {"Q2_K", Ftype::Q2_K, TypeId::Q2_K, false, "Q2_K with Q3_K/Q4_K in places, smallest"},
};

constexpr auto kAnyFtype = static_cast<Ftype>(0xFFFFFFFFu);
enum class Tri : uint8_t { Any, Yes, No };
enum class Layer : uint8_t { Any, LtN8, LtN16, Lt2, Lt4, MoreBits, MidN8 };

struct Rule {
    Ftype ftype;
    TensorRole role;
    Tri gqa_ge4;    // n_gqa >= 4
    Tri imatrix;    // an imatrix was given
    Layer layer;
    TypeId type;
};

using R = TensorRole;
using T = TypeId;
using F = Ftype;
constexpr Tri A = Tri::Any, Y = Tri::Yes, N = Tri::No;

// llama_tensor_get_type for dense, non-Falcon models, in its order of precedence.
const std::vector<Rule> kRules = {
    // output / tied token_embd (the block-size check comes first, in code)
    {F::IQ3_XXS, R::Output, A, A, Layer::Any, T::Q5_K},
    {F::Q8_0, R::Output, A, A, Layer::Any, T::Q8_0},
    {kAnyFtype, R::Output, A, A, Layer::Any, T::Q6_K},
    // untied token_embd
    {F::IQ3_XXS, R::TokenEmbd, A, A, Layer::Any, T::IQ3_S},
    // attn_v
    {F::Q2_K, R::AttnV, Y, A, Layer::Any, T::Q4_K},
    {F::Q2_K, R::AttnV, A, A, Layer::Any, T::Q3_K},
    {F::IQ3_XXS, R::AttnV, Y, A, Layer::Any, T::Q4_K},
    {F::IQ3_XXS, R::AttnV, A, N, Layer::Any, T::IQ3_S},
    {F::IQ3_XXS, R::AttnV, A, A, Layer::Any, T::IQ3_XXS},
    {F::IQ3_XS, R::AttnV, Y, A, Layer::Any, T::Q4_K},
    {F::IQ3_S, R::AttnV, Y, A, Layer::Any, T::Q4_K},
    {F::IQ3_M, R::AttnV, A, A, Layer::Any, T::Q4_K},
    {F::Q3_K_M, R::AttnV, A, A, Layer::Lt2, T::Q5_K},
    {F::Q3_K_M, R::AttnV, A, A, Layer::Any, T::Q4_K},
    {F::Q3_K_L, R::AttnV, A, A, Layer::Any, T::Q5_K},
    {F::IQ4_NL, R::AttnV, Y, A, Layer::Any, T::Q5_K},
    {F::IQ4_XS, R::AttnV, Y, A, Layer::Any, T::Q5_K},
    {F::Q4_K_M, R::AttnV, A, A, Layer::MoreBits, T::Q6_K},
    {F::Q5_K_M, R::AttnV, A, A, Layer::MoreBits, T::Q6_K},
    {F::Q4_K_S, R::AttnV, A, A, Layer::Lt4, T::Q5_K},
    // attn_k, attn_q
    {F::IQ3_XS, R::AttnK, A, A, Layer::Any, T::IQ3_XXS},
    {F::IQ3_XXS, R::AttnK, A, A, Layer::Any, T::IQ2_S},
    {F::IQ3_XS, R::AttnQ, A, A, Layer::Any, T::IQ3_XXS},
    {F::IQ3_XXS, R::AttnQ, A, A, Layer::Any, T::IQ2_S},
    // ffn_down
    {F::Q2_K, R::FfnDown, A, A, Layer::Any, T::Q3_K},
    {F::IQ3_XXS, R::FfnDown, A, N, Layer::LtN8, T::Q4_K},
    {F::IQ3_XXS, R::FfnDown, A, N, Layer::Any, T::Q3_K},
    {F::Q3_K_M, R::FfnDown, A, A, Layer::LtN16, T::Q5_K},
    {F::Q3_K_M, R::FfnDown, A, A, Layer::Any, T::Q4_K},
    {F::IQ3_M, R::FfnDown, A, A, Layer::LtN8, T::Q4_K},
    {F::Q3_K_L, R::FfnDown, A, A, Layer::Any, T::Q5_K},
    {F::Q4_K_M, R::FfnDown, A, A, Layer::MoreBits, T::Q6_K},
    {F::IQ4_NL, R::FfnDown, A, N, Layer::LtN8, T::Q5_K},
    {F::IQ4_XS, R::FfnDown, A, N, Layer::LtN8, T::Q5_K},
    {F::Q5_K_M, R::FfnDown, A, A, Layer::MoreBits, T::Q6_K},
    {F::Q4_K_S, R::FfnDown, A, A, Layer::LtN8, T::Q5_K},
    {F::Q4_0, R::FfnDown, A, Y, Layer::LtN8, T::Q4_1},
    {F::Q5_0, R::FfnDown, A, Y, Layer::LtN8, T::Q5_1},
    // attn_output
    {F::Q2_K, R::AttnOutput, A, A, Layer::Any, T::Q3_K},
    {F::IQ3_XXS, R::AttnOutput, A, A, Layer::Any, T::IQ3_S},
    {F::Q3_K_M, R::AttnOutput, A, A, Layer::Any, T::Q4_K},
    {F::Q3_K_L, R::AttnOutput, A, A, Layer::Any, T::Q5_K},
    {F::IQ3_M, R::AttnOutput, A, A, Layer::Any, T::Q4_K},
    // ffn_gate, ffn_up
    {F::IQ3_XS, R::FfnGate, A, A, Layer::MidN8, T::IQ3_XXS},
    {F::IQ3_XS, R::FfnUp, A, A, Layer::MidN8, T::IQ3_XXS},
};

bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

bool tri_ok(Tri t, bool v) { return t == Tri::Any || (t == Tri::Yes) == v; }

bool layer_ok(Layer l, int i, int n) {
    switch (l) {
        case Layer::Any: return true;
        case Layer::LtN8: return i < n / 8;
        case Layer::LtN16: return i < n / 16;
        case Layer::Lt2: return i < 2;
        case Layer::Lt4: return i < 4;
        case Layer::MoreBits: return use_more_bits(i, n);
        case Layer::MidN8: return i >= n / 8 && i < 7 * n / 8;
    }
    return false;
}

bool fits(TypeId t, int64_t ne0) { return ne0 % type_traits(t).block_size == 0; }

bool ieq(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (std::toupper(static_cast<unsigned char>(a[i])) != std::toupper(static_cast<unsigned char>(b[i]))) return false;
    return true;
}

bool ends_with(const std::string& s, std::string_view suf) {
    return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

}  // namespace

const std::vector<LadderType>& ladder_types() { return kLadder; }

std::optional<LadderType> find_ladder_type(std::string_view name) {
    static const std::array<std::pair<const char*, const char*>, 3> aliases = {
        {{"Q3_K", "Q3_K_M"}, {"Q4_K", "Q4_K_M"}, {"Q5_K", "Q5_K_M"}}};
    for (const auto& [alias, real] : aliases)
        if (ieq(name, alias)) name = real;
    for (const auto& l : kLadder)
        if (ieq(name, l.name)) return l;
    return std::nullopt;
}

const LadderType& ladder_type(Ftype f) {
    for (const auto& l : kLadder)
        if (l.ftype == f) return l;
    GEMMA_ASSERT(false);
}

const std::vector<std::string>& release_ladder_names() {
    static const std::vector<std::string> names = {"Q2_K",   "IQ3_XS", "IQ3_S",  "Q3_K_S", "IQ3_M",  "Q3_K",
                                                   "Q3_K_M", "Q3_K_L", "IQ4_XS", "Q4_0",   "IQ4_NL", "Q4_K_S",
                                                   "Q4_K",   "Q4_K_M", "Q4_1",   "Q5_0",   "Q5_K_S", "Q5_K",
                                                   "Q5_K_M", "Q5_1",   "Q6_K",   "Q8_0"};
    return names;
}

TensorRole tensor_role(const std::string& name) {
    if (name == "output.weight") return R::Output;
    if (name == "token_embd.weight") return R::TokenEmbd;
    static const std::array<std::pair<const char*, TensorRole>, 7> suffixes = {{
        {".attn_q.weight", R::AttnQ}, {".attn_k.weight", R::AttnK}, {".attn_v.weight", R::AttnV},
        {".attn_output.weight", R::AttnOutput}, {".ffn_gate.weight", R::FfnGate}, {".ffn_up.weight", R::FfnUp},
        {".ffn_down.weight", R::FfnDown},
    }};
    for (const auto& [suf, role] : suffixes)
        if (ends_with(name, suf)) return role;
    return R::Other;
}

bool is_quantizable(const std::string& name, int n_dims) {
    return n_dims >= 2 && ends_with(name, "weight") && name.find("_norm.weight") == std::string::npos;
}

bool type_requires_imatrix(TypeId t) {
    return t == TypeId::IQ3_XXS || t == TypeId::IQ2_XXS || t == TypeId::IQ2_XS || t == TypeId::IQ2_S ||
           t == TypeId::IQ1_S || t == TypeId::IQ1_M;
}

TypeId choose_tensor_type(Ftype f, const TensorSite& s) {
    const LadderType& lt = ladder_type(f);
    const TypeId def = lt.default_type;
    if (!type_traits(def).quantized) return def;  // F32/F16/BF16 mixes apply no rules

    TensorRole role = tensor_role(s.name);
    if (role == R::TokenEmbd && !s.has_output) role = R::Output;  // tied embeddings act as the output

    TypeId t = def;
    if (role == R::Output && !fits(def, s.ne0)) {
        t = TypeId::Q8_0;
    } else {
        for (const Rule& r : kRules) {
            if (r.role != role || (r.ftype != f && r.ftype != kAnyFtype)) continue;
            if (!tri_ok(r.gqa_ge4, s.n_gqa >= 4) || !tri_ok(r.imatrix, s.has_imatrix)) continue;
            if (!layer_ok(r.layer, s.layer, s.n_layer)) continue;
            t = r.type;
            break;
        }
    }
    if (fits(t, s.ne0)) return t;
    // Row length not a multiple of the block: llama-quantize's fallback chain.
    TypeId fb;
    switch (t) {
        case T::IQ2_XXS: case T::IQ2_XS: case T::IQ2_S: case T::IQ3_XXS: case T::IQ3_S: case T::IQ4_XS:
        case T::IQ1_S: case T::IQ1_M: fb = T::IQ4_NL; break;
        case T::Q2_K: case T::Q3_K: fb = T::Q4_0; break;
        case T::Q4_K: fb = T::Q5_0; break;
        case T::Q5_K: fb = T::Q5_1; break;
        case T::Q6_K: fb = T::Q8_0; break;
        default:
            throw_error("tensor '" + s.name + "': row length " + std::to_string(s.ne0) + " does not fit type " +
                        type_name(t) + " and it has no fallback");
    }
    if (!fits(fb, s.ne0)) fb = T::F16;
    std::fprintf(stderr, "note: %s: row length %lld is not a multiple of %s's block, using %s\n", s.name.c_str(),
                 static_cast<long long>(s.ne0), type_name(t), type_name(fb));
    return fb;
}

}  // namespace gemma
