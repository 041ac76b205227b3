// Ladder quantization types (llama-quantize's ftypes) and the per-tensor type rules each mix applies.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "quant/types.h"

namespace gemma {

// `enum llama_ftype` values, stored as general.file_type.
enum class Ftype : uint32_t {
    ALL_F32 = 0, MOSTLY_F16 = 1, Q4_0 = 2, Q4_1 = 3, Q8_0 = 7, Q5_0 = 8, Q5_1 = 9, Q2_K = 10,
    Q3_K_S = 11, Q3_K_M = 12, Q3_K_L = 13, Q4_K_S = 14, Q4_K_M = 15, Q5_K_S = 16, Q5_K_M = 17, Q6_K = 18,
    IQ3_XS = 22, IQ3_XXS = 23, IQ4_NL = 25, IQ3_S = 26, IQ3_M = 27, IQ4_XS = 30, BF16 = 32,
};

struct LadderType {
    const char* name;         // canonical name, e.g. "Q4_K_M"
    Ftype ftype;
    TypeId default_type;      // llama_ftype_get_default_type
    bool needs_imatrix;       // some tensor of the mix is a type that cannot be made without one
    const char* description;  // for --help
};

// Case-insensitive; accepts the aliases Q3_K, Q4_K, Q5_K (= *_M).
std::optional<LadderType> find_ladder_type(std::string_view name);
const LadderType& ladder_type(Ftype f);
const std::vector<LadderType>& ladder_types();
// The published ladder's file list, in card order (Q2_K ... Q8_0), including the Q3_K/Q4_K/Q5_K alias files.
const std::vector<std::string>& release_ladder_names();

// The role a tensor plays in the per-tensor rules.
enum class TensorRole { Output, TokenEmbd, AttnQ, AttnK, AttnV, AttnOutput, FfnGate, FfnUp, FfnDown, Other };

struct TensorSite {
    std::string name;
    int64_t ne0 = 0;        // row length
    int n_dims = 2;
    int layer = -1;         // from "blk.N."; -1 otherwise
    int n_layer = 0;        // number of layers (= attn_v / ffn_down tensors for dense models)
    int n_gqa = 1;          // n_head / n_head_kv
    bool has_output = false;  // the file has output.weight (else token_embd is the tied output)
    bool has_imatrix = false;
};

TensorRole tensor_role(const std::string& name);
// Whether llama-quantize quantizes this tensor at all (>= 2 dims, name ends in "weight", not a norm).
bool is_quantizable(const std::string& name, int n_dims);
// The type a tensor gets in mix `f` (llama_tensor_get_type + the block-size fallback), or the tensor's
// own type when it is not quantized. Throws if no compatible type exists.
TypeId choose_tensor_type(Ftype f, const TensorSite& site);
// Types that llama-quantize refuses to produce without importance weights.
bool type_requires_imatrix(TypeId t);

}  // namespace gemma
