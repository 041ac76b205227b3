// Plans llama-quantize's output file: metadata keys as it rewrites them, its loader order, per-tensor types.
#include "quant/quantize_plan.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "core/error.h"

namespace gemma {
namespace {

bool is_float_type(TypeId t) { return t == TypeId::F32 || t == TypeId::F16 || t == TypeId::BF16; }

// llama.cpp's loader order: tensors outside blocks first, then by layer number, then by name.
std::vector<const GgufTensor*> loader_order(const GgufFile& f) {
    std::vector<const GgufTensor*> v;
    for (const auto& t : f.tensors()) v.push_back(&t);
    std::sort(v.begin(), v.end(), [](const GgufTensor* a, const GgufTensor* b) {
        const int la = layer_of(a->name), lb = layer_of(b->name);
        if (la != lb) return la < lb;
        return a->name < b->name;
    });
    return v;
}

// gguf_set_val's semantics as llama-quantize uses them: an existing key is removed and appended.
void set_append(std::vector<GgufKv>& kvs, const std::string& key, GgufValue v) {
    std::erase_if(kvs, [&](const GgufKv& kv) { return kv.key == key; });
    kvs.push_back({key, std::move(v)});
}

}  // namespace

int layer_of(const std::string& name) {
    int layer = -1;
    if (std::sscanf(name.c_str(), "blk.%d.", &layer) != 1) return -1;
    return layer;
}

MixContext mix_context(const GgufFile& f) {
    const std::string arch = f.get_string("general.architecture", "");
    const uint64_t n_head = f.get_uint(arch + ".attention.head_count", 1);
    const uint64_t n_head_kv = f.get_uint(arch + ".attention.head_count_kv", n_head);
    std::set<int> layers;
    for (const auto& t : f.tensors())
        if (int l = layer_of(t.name); l >= 0) layers.insert(l);
    MixContext c;
    c.n_layer = static_cast<int>(f.get_uint(arch + ".block_count", layers.size()));
    c.n_gqa = static_cast<int>(n_head_kv ? n_head / n_head_kv : 1);
    c.has_output = f.find_tensor("output.weight") != nullptr;
    return c;
}

TypeId planned_type(Ftype f, const MixContext& c, const GgufTensor& t, bool has_imatrix) {
    if (!is_quantizable(t.name, static_cast<int>(t.n_dims))) return t.type;
    const TensorSite site{t.name, t.ne[0], static_cast<int>(t.n_dims), layer_of(t.name), c.n_layer, c.n_gqa,
                          c.has_output, has_imatrix};
    return choose_tensor_type(f, site);
}

const std::vector<float>* ImportanceWeights::get(const GgufTensor& t) {
    if (!im_) return nullptr;
    auto it = cache_.find(t.name);
    if (it == cache_.end()) {
        std::vector<float> w = im_->quant_weights(t.name);
        if (!w.empty() && static_cast<int64_t>(w.size()) != t.ne[0] * t.ne[2]) {
            if (tensor_role(t.name) != TensorRole::TokenEmbd)
                throw_error(path_ + ": entry '" + t.name + "' has " + std::to_string(w.size()) +
                            " values, the tensor has rows of " + std::to_string(t.ne[0]));
            w.clear();  // llama-quantize ignores a token_embd entry that does not fit
        }
        it = cache_.emplace(t.name, std::move(w)).first;
    }
    return it->second.empty() ? nullptr : &it->second;
}

QuantPlan plan_quantization(const GgufFile& in, Ftype f, ImportanceWeights& w, const PlanOptions& o) {
    const LadderType& lt = ladder_type(f);
    const bool has_imatrix = w.present();
    if (lt.needs_imatrix && !has_imatrix)
        throw_error(std::string(lt.name) + " needs an importance matrix: pass --imatrix FILE (make one with `gemma imatrix`)");

    QuantPlan plan;
    plan.ftype = f;
    plan.alignment = static_cast<uint32_t>(in.alignment());
    for (const auto& kv : in.kvs()) {
        if (kv.key == "general.quantization_version" || kv.key == "general.file_type" || kv.key.rfind("split.", 0) == 0)
            continue;
        set_append(plan.kvs, kv.key, kv.value);
    }
    set_append(plan.kvs, "general.quantization_version", GgufValue::u32(2));
    set_append(plan.kvs, "general.file_type", GgufValue::u32(static_cast<uint32_t>(f)));
    if (has_imatrix) {
        const Imatrix& im = w.imatrix();
        set_append(plan.kvs, "quantize.imatrix.file", GgufValue::string(o.imatrix_label.substr(0, 127)));
        if (!im.datasets.empty()) set_append(plan.kvs, "quantize.imatrix.dataset", GgufValue::string(im.datasets[0]));
        set_append(plan.kvs, "quantize.imatrix.entries_count", GgufValue::u32(static_cast<uint32_t>(im.entries.size())));
        if (im.chunk_count > 0) set_append(plan.kvs, "quantize.imatrix.chunks_count", GgufValue::u32(im.chunk_count));
    }

    const MixContext ctx = mix_context(in);
    for (const GgufTensor* t : loader_order(in)) {
        PlannedTensor p;
        p.src = t;
        p.type = planned_type(f, ctx, *t, has_imatrix);
        if (p.type != t->type) {
            if (!is_float_type(t->type) && !o.allow_requantize)
                throw_error(o.input_name + ": tensor '" + t->name + "' is already quantized (" + type_name(t->type) +
                            "); requantizing loses quality, pass --allow-requantize to do it anyway");
            p.weights = w.get(*t);
            if (type_requires_imatrix(p.type) && !p.weights)
                throw_error("tensor '" + t->name + "' becomes " + type_name(p.type) + ", which needs importance weights, but " +
                            (has_imatrix ? "the imatrix has no entry for it" : "no --imatrix was given"));
        }
        plan.tensors.push_back(p);
    }
    return plan;
}

}  // namespace gemma
