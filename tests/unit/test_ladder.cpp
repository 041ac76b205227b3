// The ladder rules table against llama-quantize's verified Gemma 2B / 7B type tables (SPEC §5.5).
#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "quant/ladder.h"

namespace gemma {
namespace {

struct Shape {
    int n_layer, n_gqa;
    int64_t n_embd, q_dim, n_ff;
};
const Shape k2B{18, 8, 2048, 2048, 16384};
const Shape k7B{28, 1, 3072, 4096, 24576};

std::string pick(const char* ftype, const Shape& s, const std::string& tensor, int layer, bool imatrix = false) {
    TensorSite site;
    site.name = layer >= 0 ? "blk." + std::to_string(layer) + "." + tensor + ".weight" : tensor + ".weight";
    site.ne0 = tensor == "attn_output" ? s.q_dim : tensor == "ffn_down" ? s.n_ff : s.n_embd;
    site.layer = layer;
    site.n_layer = s.n_layer;
    site.n_gqa = s.n_gqa;
    site.has_imatrix = imatrix;
    return type_name(choose_tensor_type(find_ladder_type(ftype)->ftype, site));
}

// Layers where `more bits` rules apply: [0,1,4,7,10,13,15,16,17] for 2B, SPEC's list for 7B.
std::set<int> more_bits(const Shape& s) {
    return s.n_layer == 18 ? std::set<int>{0, 1, 4, 7, 10, 13, 15, 16, 17}
                           : std::set<int>{0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27};
}

TEST(Ladder, NamesAndAliases) {
    EXPECT_EQ(find_ladder_type("q4_k")->ftype, Ftype::Q4_K_M);
    EXPECT_EQ(find_ladder_type("Q3_K")->ftype, Ftype::Q3_K_M);
    EXPECT_EQ(find_ladder_type("Q5_K")->ftype, Ftype::Q5_K_M);
    EXPECT_EQ(find_ladder_type("iq3_xs")->ftype, Ftype::IQ3_XS);
    EXPECT_EQ(static_cast<uint32_t>(find_ladder_type("IQ4_XS")->ftype), 30u);
    EXPECT_FALSE(find_ladder_type("Q4_2").has_value());
    EXPECT_FALSE(find_ladder_type("").has_value());
    EXPECT_TRUE(find_ladder_type("IQ3_XS")->needs_imatrix);
    EXPECT_TRUE(find_ladder_type("IQ3_XXS")->needs_imatrix);
    EXPECT_FALSE(find_ladder_type("IQ3_S")->needs_imatrix);
    for (const auto& n : release_ladder_names()) EXPECT_TRUE(find_ladder_type(n).has_value()) << n;
    EXPECT_EQ(release_ladder_names().size(), 22u);
}

TEST(Ladder, TiedEmbeddingIsTheOutput) {
    for (const Shape* s : {&k2B, &k7B}) {
        EXPECT_EQ(pick("Q4_K_M", *s, "token_embd", -1), "q6_K");
        EXPECT_EQ(pick("Q2_K", *s, "token_embd", -1), "q6_K");
        EXPECT_EQ(pick("Q8_0", *s, "token_embd", -1), "q8_0");
        EXPECT_EQ(pick("IQ3_XXS", *s, "token_embd", -1, true), "q5_K");
        EXPECT_EQ(pick("F16", *s, "token_embd", -1), "f16");
        EXPECT_EQ(pick("BF16", *s, "token_embd", -1), "bf16");
    }
}

TEST(Ladder, Gemma2BTable) {
    const Shape& s = k2B;
    const auto mb = more_bits(s);
    for (int i = 0; i < s.n_layer; ++i) {
        EXPECT_EQ(pick("Q2_K", s, "attn_v", i), "q4_K");
        EXPECT_EQ(pick("Q2_K", s, "ffn_down", i), "q3_K");
        EXPECT_EQ(pick("Q2_K", s, "attn_output", i), "q3_K");
        EXPECT_EQ(pick("Q2_K", s, "ffn_up", i), "q2_K");
        EXPECT_EQ(pick("Q3_K_S", s, "attn_v", i), "q3_K");
        EXPECT_EQ(pick("Q3_K_M", s, "attn_v", i), i < 2 ? "q5_K" : "q4_K");
        EXPECT_EQ(pick("Q3_K_M", s, "ffn_down", i), i < 1 ? "q5_K" : "q4_K");
        EXPECT_EQ(pick("Q3_K_M", s, "attn_output", i), "q4_K");
        EXPECT_EQ(pick("Q3_K_L", s, "ffn_down", i), "q5_K");
        EXPECT_EQ(pick("Q4_K_S", s, "attn_v", i), i < 4 ? "q5_K" : "q4_K");
        EXPECT_EQ(pick("Q4_K_S", s, "ffn_down", i), i < 2 ? "q5_K" : "q4_K");
        EXPECT_EQ(pick("Q4_K_M", s, "attn_v", i), mb.count(i) ? "q6_K" : "q4_K");
        EXPECT_EQ(pick("Q4_K_M", s, "ffn_down", i), mb.count(i) ? "q6_K" : "q4_K");
        EXPECT_EQ(pick("Q5_K_M", s, "ffn_down", i), mb.count(i) ? "q6_K" : "q5_K");
        EXPECT_EQ(pick("Q5_K_S", s, "attn_v", i), "q5_K");
        EXPECT_EQ(pick("Q4_0", s, "ffn_down", i), "q4_0");
        EXPECT_EQ(pick("Q4_0", s, "ffn_down", i, true), i < 2 ? "q4_1" : "q4_0");
        EXPECT_EQ(pick("Q5_0", s, "ffn_down", i, true), i < 2 ? "q5_1" : "q5_0");
        EXPECT_EQ(pick("IQ3_XS", s, "attn_q", i, true), "iq3_xxs");
        EXPECT_EQ(pick("IQ3_XS", s, "attn_v", i, true), "q4_K");
        EXPECT_EQ(pick("IQ3_XS", s, "ffn_gate", i, true), (i < 2 || i >= 15) ? "iq3_s" : "iq3_xxs");
        EXPECT_EQ(pick("IQ3_XS", s, "ffn_down", i, true), "iq3_s");
        EXPECT_EQ(pick("IQ3_S", s, "attn_v", i), "q4_K");
        EXPECT_EQ(pick("IQ3_M", s, "attn_output", i), "q4_K");
        EXPECT_EQ(pick("IQ3_M", s, "ffn_down", i), i < 2 ? "q4_K" : "iq3_s");
        EXPECT_EQ(pick("IQ4_XS", s, "attn_v", i), "q5_K");
        EXPECT_EQ(pick("IQ4_XS", s, "ffn_down", i), i < 2 ? "q5_K" : "iq4_xs");
        EXPECT_EQ(pick("IQ4_XS", s, "ffn_down", i, true), "iq4_xs");
        EXPECT_EQ(pick("IQ4_NL", s, "ffn_down", i), i < 2 ? "q5_K" : "iq4_nl");
        EXPECT_EQ(pick("IQ3_XXS", s, "attn_k", i, true), "iq2_s");
        EXPECT_EQ(pick("IQ3_XXS", s, "attn_v", i, true), "q4_K");
        EXPECT_EQ(pick("IQ3_XXS", s, "attn_output", i, true), "iq3_s");
        EXPECT_EQ(pick("IQ3_XXS", s, "ffn_down", i, true), "iq3_xxs");
        EXPECT_EQ(pick("IQ3_XXS", s, "ffn_down", i, false), i < 2 ? "q4_K" : "q3_K");
    }
}

TEST(Ladder, Gemma7BTable) {
    const Shape& s = k7B;
    const auto mb = more_bits(s);
    for (int i = 0; i < s.n_layer; ++i) {
        EXPECT_EQ(pick("Q2_K", s, "attn_v", i), "q3_K");  // n_gqa 1: no Q4_K bump
        EXPECT_EQ(pick("Q3_K_M", s, "ffn_down", i), i < 1 ? "q5_K" : "q4_K");
        EXPECT_EQ(pick("Q4_K_S", s, "ffn_down", i), i < 3 ? "q5_K" : "q4_K");
        EXPECT_EQ(pick("Q4_K_M", s, "attn_v", i), mb.count(i) ? "q6_K" : "q4_K");
        EXPECT_EQ(pick("Q4_K_M", s, "attn_q", i), "q4_K");
        EXPECT_EQ(pick("Q5_K_M", s, "attn_v", i), mb.count(i) ? "q6_K" : "q5_K");
        EXPECT_EQ(pick("Q4_0", s, "ffn_down", i, true), i < 3 ? "q4_1" : "q4_0");
        EXPECT_EQ(pick("IQ3_XS", s, "attn_v", i, true), "iq3_s");
        EXPECT_EQ(pick("IQ3_XS", s, "ffn_up", i, true), (i < 3 || i >= 24) ? "iq3_s" : "iq3_xxs");
        EXPECT_EQ(pick("IQ3_S", s, "attn_v", i), "iq3_s");
        EXPECT_EQ(pick("IQ3_M", s, "attn_v", i), "q4_K");
        EXPECT_EQ(pick("IQ3_M", s, "ffn_down", i), i < 3 ? "q4_K" : "iq3_s");
        EXPECT_EQ(pick("IQ4_XS", s, "attn_v", i), "iq4_xs");
        EXPECT_EQ(pick("IQ4_NL", s, "ffn_down", i), i < 3 ? "q5_K" : "iq4_nl");
        EXPECT_EQ(pick("IQ3_XXS", s, "attn_v", i, true), "iq3_xxs");
        EXPECT_EQ(pick("Q6_K", s, "ffn_gate", i), "q6_K");
        EXPECT_EQ(pick("Q8_0", s, "attn_output", i), "q8_0");
    }
}

TEST(Ladder, FallbackWhenRowsDoNotDivideIntoBlocks) {
    TensorSite s;
    s.name = "blk.0.attn_q.weight";
    s.layer = 0;
    s.n_layer = 2;
    s.ne0 = 96;  // not a multiple of 256, but of 32
    EXPECT_STREQ(type_name(choose_tensor_type(Ftype::Q4_K_M, s)), "q5_0");
    EXPECT_STREQ(type_name(choose_tensor_type(Ftype::Q3_K_S, s)), "q4_0");
    EXPECT_STREQ(type_name(choose_tensor_type(Ftype::Q5_K_S, s)), "q5_1");
    EXPECT_STREQ(type_name(choose_tensor_type(Ftype::Q6_K, s)), "q8_0");
    EXPECT_STREQ(type_name(choose_tensor_type(Ftype::IQ4_XS, s)), "iq4_nl");
    s.ne0 = 40;  // not even a multiple of 32
    EXPECT_STREQ(type_name(choose_tensor_type(Ftype::Q4_K_M, s)), "f16");
    EXPECT_THROW(choose_tensor_type(Ftype::Q4_0, s), Error);
    s.name = "token_embd.weight";
    s.layer = -1;
    s.ne0 = 96;
    EXPECT_STREQ(type_name(choose_tensor_type(Ftype::Q4_K_M, s)), "q8_0");  // output rule's own check
}

TEST(Ladder, WhatIsQuantized) {
    EXPECT_TRUE(is_quantizable("blk.0.attn_q.weight", 2));
    EXPECT_TRUE(is_quantizable("token_embd.weight", 2));
    EXPECT_FALSE(is_quantizable("blk.0.attn_norm.weight", 1));
    EXPECT_FALSE(is_quantizable("blk.0.attn_norm.weight", 2));
    EXPECT_FALSE(is_quantizable("blk.0.attn_q.bias", 2));
    EXPECT_FALSE(is_quantizable("rope_freqs.weight", 1));
    EXPECT_TRUE(type_requires_imatrix(TypeId::IQ3_XXS));
    EXPECT_TRUE(type_requires_imatrix(TypeId::IQ2_S));
    EXPECT_FALSE(type_requires_imatrix(TypeId::IQ3_S));
}

}  // namespace
}  // namespace gemma
