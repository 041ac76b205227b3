// Weight binding: finds each tensor by its llama.cpp name and checks its shape and type.
#include "model/weights.h"

#include <algorithm>
#include <atomic>
#include <thread>

#include "core/error.h"
#include "core/mapped_file.h"
#include "gguf/gguf.h"
#include "kernels/kernels.h"

namespace gemma {
namespace {

std::string shape_str(int64_t a, int64_t b) {
    return b < 0 ? "[" + std::to_string(a) + "]" : "[" + std::to_string(a) + ", " + std::to_string(b) + "]";
}

const GgufTensor& get(const GgufFile& f, const std::string& name, int64_t ne0, int64_t ne1) {
    const GgufTensor* t = f.find_tensor(name);
    const std::string expected = shape_str(ne0, ne1);
    if (!t) throw_error(f.path() + ": missing tensor '" + name + "' (expected shape " + expected + ")");
    const bool ok = t->ne[0] == ne0 && t->ne[1] == (ne1 < 0 ? 1 : ne1) && t->ne[2] == 1 && t->ne[3] == 1;
    if (!ok)
        throw_error(f.path() + ": tensor '" + name + "' has shape " + t->shape_string() + ", expected " + expected);
    return *t;
}

ops::Matrix matrix(const GgufFile& f, const std::string& name, int64_t n_in, int64_t n_out) {
    const GgufTensor& t = get(f, name, n_in, n_out);
    const TypeTraits* tr = find_type_traits(static_cast<int32_t>(t.type));
    // Q8_K and Q8_1 only ever hold activations; I32 and friends are not numbers we multiply with.
    if (!tr || !tr->dequantize_row || t.type == TypeId::Q8_K || t.type == TypeId::Q8_1)
        throw_error(f.path() + ": tensor '" + name + "' has type " + type_name(t.type) +
                    ", which cannot be used as a weight matrix");
    if (n_in % tr->block_size != 0)
        throw_error(f.path() + ": tensor '" + name + "' row length " + std::to_string(n_in) +
                    " is not a multiple of the " + tr->name + " block size " + std::to_string(tr->block_size));
    ops::Matrix m;
    m.type = t.type;
    m.n_in = n_in;
    m.n_out = n_out;
    m.data = t.data;
    m.row_bytes = row_size(t.type, n_in);
    return m;
}

const float* norm(const GgufFile& f, const std::string& name, int64_t n, ModelWeights& w) {
    const GgufTensor& t = get(f, name, n, -1);
    if (t.type == TypeId::F32) return reinterpret_cast<const float*>(t.data);
    const TypeTraits* tr = find_type_traits(static_cast<int32_t>(t.type));
    if (!tr || !tr->dequantize_row || n % tr->block_size != 0)
        throw_error(f.path() + ": tensor '" + name + "' has unsupported type " + type_name(t.type));
    w.owned.emplace_back(static_cast<size_t>(n));
    tr->dequantize_row(t.data, w.owned.back().data(), n);
    return w.owned.back().data();
}

}  // namespace

ModelWeights ModelWeights::bind(const GgufFile& f, const ModelConfig& c) {
    ModelWeights w;
    const ArchDesc& a = *c.desc;
    const TensorDims dims = c.dims();
    w.layers.resize(static_cast<size_t>(c.n_layer));
    // Order matters for the tied output: token_embd comes first in every description.
    for (const TensorDef& d : a.tensors) {
        for (int64_t il = 0; il < (d.per_layer ? c.n_layer : 1); ++il) {
            const std::string name = gguf_tensor_name(d, il);
            if (d.optional && !f.find_tensor(name)) continue;
            const int64_t ne0 = tensor_dim(d.ne0, dims);
            if (d.norm) {
                const float* v = norm(f, name, ne0, w);
                LayerWeights* l = d.per_layer ? &w.layers[static_cast<size_t>(il)] : nullptr;
                switch (d.id) {
                    case TensorId::OutputNorm: w.output_norm = v; break;
                    case TensorId::AttnNorm: l->attn_norm = v; break;
                    case TensorId::AttnQNorm: l->attn_q_norm = v; break;
                    case TensorId::AttnKNorm: l->attn_k_norm = v; break;
                    case TensorId::PostAttnNorm: l->post_attn_norm = v; break;
                    case TensorId::FfnNorm: l->ffn_norm = v; break;
                    case TensorId::PostFfwNorm: l->post_ffw_norm = v; break;
                    default: GEMMA_ASSERT(false && "norm without a slot");
                }
                continue;
            }
            const ops::Matrix m = matrix(f, name, ne0, tensor_dim(d.ne1, dims));
            if (d.id == TensorId::TokenEmbd) {
                w.token_embd = m;
                w.output = m;  // tied unless output.weight exists
                continue;
            }
            if (d.id == TensorId::Output) {
                w.output = m;
                continue;
            }
            LayerWeights& l = w.layers[static_cast<size_t>(il)];
            switch (d.id) {
                case TensorId::AttnQ: l.attn_q = m; break;
                case TensorId::AttnK: l.attn_k = m; break;
                case TensorId::AttnV: l.attn_v = m; break;
                case TensorId::AttnOutput: l.attn_output = m; break;
                case TensorId::FfnGate: l.ffn_gate = m; break;
                case TensorId::FfnUp: l.ffn_up = m; break;
                case TensorId::FfnDown: l.ffn_down = m; break;
                default: GEMMA_ASSERT(false && "matrix without a slot");
            }
        }
    }
    // A tensor of a layer the config does not have, or of another family, means the file is not what it says.
    for (const GgufTensor& t : f.tensors()) {
        int64_t il = -1;
        const TensorDef* d = match_gguf_tensor(a, t.name, &il);
        if (!d || il >= c.n_layer)
            throw_error(f.path() + ": tensor '" + t.name + "' is not part of a " + a.label + " model with " +
                        std::to_string(c.n_layer) + " layers (architecture '" + a.gguf_arch + "')");
    }
    return w;
}

size_t ModelWeights::repack() {
    std::vector<ops::Matrix*> todo;
    auto want = [&](ops::Matrix& m) {
        if (!m.packed && kernels::packable(m.type, m.n_in) && m.n_out % kernels::kPackRows == 0) todo.push_back(&m);
    };
    for (LayerWeights& l : layers)
        for (ops::Matrix* m : {&l.attn_q, &l.attn_k, &l.attn_v, &l.attn_output, &l.ffn_gate, &l.ffn_up, &l.ffn_down})
            want(*m);
    want(output);
    size_t total = 0;
    const size_t first = packed_storage.size();
    for (ops::Matrix* m : todo) {
        packed_storage.emplace_back(static_cast<size_t>(m->n_out) * m->row_bytes);
        total += packed_storage.back().size();
    }
    // Packing is page faults and copies: a few GB for a 7B model, so every hardware thread takes matrices.
    std::atomic<size_t> next{0};
    auto worker = [&] {
        for (size_t i; (i = next.fetch_add(1)) < todo.size();) {
            const ops::Matrix& m = *todo[i];
            const size_t group_bytes = static_cast<size_t>(kernels::kPackRows) * m.row_bytes;
            uint8_t* dst = packed_storage[first + i].data();
            for (int64_t g = 0; g < m.n_out / kernels::kPackRows; ++g)
                kernels::pack_group(m.type, m.n_in, m.data + static_cast<size_t>(g) * group_bytes, m.row_bytes,
                                    dst + static_cast<size_t>(g) * group_bytes);
            // Right away, so the process never holds a matrix twice.
            release_mapped_pages(m.data, packed_storage[first + i].size());
        }
    };
    const size_t n_threads = std::clamp<size_t>(std::thread::hardware_concurrency(), 1, std::max<size_t>(todo.size(), 1));
    std::vector<std::thread> threads;
    for (size_t t = 1; t < n_threads; ++t) threads.emplace_back(worker);
    worker();
    for (auto& t : threads) t.join();
    for (size_t i = 0; i < todo.size(); ++i) {
        ops::Matrix& m = *todo[i];
        m.data = packed_storage[first + i].data();
        m.packed = true;
    }
    return total;
}

}  // namespace gemma
