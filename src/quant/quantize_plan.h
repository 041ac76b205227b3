// Quantization plans: an output file's metadata and every tensor's type, decided before any byte is written.
// `gemma quantize` carries out one plan; `gemma release` many at once; `gemma verify` checks files against them.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "quant/imatrix.h"
#include "quant/ladder.h"

namespace gemma {

// What the per-tensor rules need to know about a model, read from its own GGUF (the `{arch}.` keys of
// whatever general.architecture says, so every Gemma family is planned alike).
struct MixContext {
    int n_layer = 0;
    int n_gqa = 1;            // n_head / n_head_kv
    bool has_output = false;  // an untied output.weight
};
MixContext mix_context(const GgufFile& f);
// N of "blk.N.*"; -1 for tensors outside the blocks.
int layer_of(const std::string& name);
// The type mix `f` gives `t` (llama-quantize's rules), or t's own type when llama-quantize leaves it alone.
TypeId planned_type(Ftype f, const MixContext& c, const GgufTensor& t, bool has_imatrix);

// An importance matrix turned into the per-tensor weights the quantizers take, each computed once and
// shared by every plan (a release's twenty files use the same weights).
class ImportanceWeights {
public:
    ImportanceWeights() = default;  // no imatrix
    ImportanceWeights(Imatrix im, std::string path) : im_(std::move(im)), path_(std::move(path)) {}
    bool present() const { return im_.has_value(); }
    const Imatrix& imatrix() const { return *im_; }
    const std::string& path() const { return path_; }
    // The weights for `t`; null when the imatrix has no usable entry. Throws gemma::Error naming the
    // imatrix file when an entry does not fit the tensor.
    const std::vector<float>* get(const GgufTensor& t);

private:
    std::optional<Imatrix> im_;
    std::string path_;
    std::map<std::string, std::vector<float>> cache_;  // empty: no usable entry
};

struct PlannedTensor {
    const GgufTensor* src = nullptr;
    TypeId type = TypeId::F32;
    const std::vector<float>* weights = nullptr;  // importance weights the quantizer gets; null: none
    bool copied() const { return type == src->type; }  // written as the source holds it
};

struct QuantPlan {
    Ftype ftype = Ftype::Q4_K_M;
    uint32_t alignment = 32;
    std::vector<GgufKv> kvs;             // the output's metadata, in order
    std::vector<PlannedTensor> tensors;  // in llama.cpp's loader order (the output's tensor order)
};

struct PlanOptions {
    std::string input_name;       // the source, for error messages
    std::string imatrix_label;    // written as quantize.imatrix.file (llama-quantize writes the path it got)
    bool allow_requantize = false;
};

// llama-quantize's output for `in` in mix `f`: same keys in the same order, same tensor order and types.
// `w` may hold no imatrix. Throws gemma::Error for bad input (requantization without permission, a type
// that needs importance weights without them, an imatrix entry of the wrong size).
QuantPlan plan_quantization(const GgufFile& in, Ftype f, ImportanceWeights& w, const PlanOptions& o);

}  // namespace gemma
