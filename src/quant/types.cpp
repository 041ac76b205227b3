// The traits table: one row per ggml type id, the only place type facts live.
#include "quant/types.h"

#include <array>
#include <cctype>

#include "core/error.h"
#include "quant/blocks.h"
#include "quant/formats.h"

namespace gemma {
namespace {

#define Q(T, name, bs, blk, fn, vdt) \
    TypeTraits{TypeId::T, name, bs, static_cast<int32_t>(sizeof(blk)), true, dequantize_row_##fn, quantize_##fn, TypeId::vdt}

const std::array<TypeTraits, 23> kTraits = {{
    TypeTraits{TypeId::F32, "f32", 1, 4, false, dequantize_row_f32, quantize_f32, TypeId::F32},
    TypeTraits{TypeId::F16, "f16", 1, 2, false, dequantize_row_f16, quantize_f16, TypeId::F16},
    TypeTraits{TypeId::BF16, "bf16", 1, 2, false, dequantize_row_bf16, quantize_bf16, TypeId::BF16},
    Q(Q4_0, "q4_0", QK4_0, block_q4_0, q4_0, Q8_0),
    Q(Q4_1, "q4_1", QK4_1, block_q4_1, q4_1, Q8_1),
    Q(Q5_0, "q5_0", QK5_0, block_q5_0, q5_0, Q8_0),
    Q(Q5_1, "q5_1", QK5_1, block_q5_1, q5_1, Q8_1),
    Q(Q8_0, "q8_0", QK8_0, block_q8_0, q8_0, Q8_0),
    Q(Q8_1, "q8_1", QK8_1, block_q8_1, q8_1, Q8_1),
    Q(Q2_K, "q2_K", QK_K, block_q2_K, q2_K, Q8_K),
    Q(Q3_K, "q3_K", QK_K, block_q3_K, q3_K, Q8_K),
    Q(Q4_K, "q4_K", QK_K, block_q4_K, q4_K, Q8_K),
    Q(Q5_K, "q5_K", QK_K, block_q5_K, q5_K, Q8_K),
    Q(Q6_K, "q6_K", QK_K, block_q6_K, q6_K, Q8_K),
    Q(Q8_K, "q8_K", QK_K, block_q8_K, q8_K, Q8_K),
    TypeTraits{TypeId::IQ2_XXS, "iq2_xxs", QK_K, sizeof(block_iq2_xxs), true, dequantize_row_iq2_xxs, nullptr, TypeId::Q8_K},
    TypeTraits{TypeId::IQ2_XS, "iq2_xs", QK_K, sizeof(block_iq2_xs), true, dequantize_row_iq2_xs, nullptr, TypeId::Q8_K},
    Q(IQ2_S, "iq2_s", QK_K, block_iq2_s, iq2_s, Q8_K),
    Q(IQ3_XXS, "iq3_xxs", QK_K, block_iq3_xxs, iq3_xxs, Q8_K),
    Q(IQ3_S, "iq3_s", QK_K, block_iq3_s, iq3_s, Q8_K),
    Q(IQ4_NL, "iq4_nl", QK4_NL, block_iq4_nl, iq4_nl, Q8_0),
    Q(IQ4_XS, "iq4_xs", QK_K, block_iq4_xs, iq4_xs, Q8_K),
    // Listed so files holding them are recognised by `info`, even though we do not compute with them.
    TypeTraits{TypeId::I32, "i32", 1, 4, false, nullptr, nullptr, TypeId::I32},
}};
#undef Q

const std::array<const TypeTraits*, kTypeIdCount> kById = [] {
    std::array<const TypeTraits*, kTypeIdCount> a{};
    for (const auto& t : kTraits) a[static_cast<size_t>(t.id)] = &t;
    return a;
}();

}  // namespace

const TypeTraits* find_type_traits(int32_t id) {
    if (id < 0 || id >= kTypeIdCount) return nullptr;
    return kById[static_cast<size_t>(id)];
}

const TypeTraits& type_traits(TypeId id) {
    const TypeTraits* t = find_type_traits(static_cast<int32_t>(id));
    GEMMA_ASSERT(t != nullptr);
    return *t;
}

std::optional<TypeId> type_from_name(std::string_view name) {
    for (const auto& t : kTraits) {
        std::string_view n = t.name;
        if (n.size() != name.size()) continue;
        bool eq = true;
        for (size_t i = 0; i < n.size() && eq; ++i)
            eq = std::tolower(static_cast<unsigned char>(n[i])) == std::tolower(static_cast<unsigned char>(name[i]));
        if (eq) return t.id;
    }
    return std::nullopt;
}

const char* type_name(TypeId id) {
    const TypeTraits* t = find_type_traits(static_cast<int32_t>(id));
    return t ? t->name : "?";
}

size_t row_size(TypeId id, int64_t ne0) {
    const TypeTraits& t = type_traits(id);
    GEMMA_ASSERT(ne0 % t.block_size == 0);
    return static_cast<size_t>(ne0 / t.block_size) * static_cast<size_t>(t.type_size);
}

}  // namespace gemma
