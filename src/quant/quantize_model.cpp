// Quantizes a GGUF the way llama-quantize does (same tensor order, keys and per-tensor types), in bounded memory.
#include "quant/quantize_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <set>
#include <thread>
#include <vector>

#include "core/error.h"
#include "gguf/gguf.h"
#include "quant/imatrix.h"

namespace gemma {
namespace {

int layer_of(const std::string& name) {
    int layer = -1;
    if (std::sscanf(name.c_str(), "blk.%d.", &layer) != 1) return -1;
    return layer;
}

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

bool is_float_type(TypeId t) { return t == TypeId::F32 || t == TypeId::F16 || t == TypeId::BF16; }

// Rows per batch: bounded memory (about 16 MiB of f32) whatever the tensor size, never zero.
int64_t batch_rows(int64_t ne0) { return std::max<int64_t>(1, (int64_t{4} << 20) / std::max<int64_t>(ne0, 1)); }

void quantize_tensor(const GgufTensor& t, TypeId out_type, const float* qw, int n_threads, GgufWriter& w) {
    const TypeTraits& src = type_traits(t.type);
    const TypeTraits& dst = type_traits(out_type);
    if (!src.dequantize_row) throw_error("tensor '" + t.name + "': cannot read type " + src.name);
    if (!dst.quantize_rows) throw_error("tensor '" + t.name + "': cannot write type " + dst.name);
    const int64_t ne0 = t.ne[0], nrows = t.n_rows();
    const size_t src_row = row_size(t.type, ne0), dst_row = row_size(out_type, ne0);
    const int64_t per_batch = batch_rows(ne0);
    std::vector<float> f32(static_cast<size_t>(std::min(per_batch, nrows) * ne0));
    std::vector<uint8_t> out(static_cast<size_t>(std::min(per_batch, nrows)) * dst_row);
    for (int64_t r0 = 0; r0 < nrows; r0 += per_batch) {
        const int64_t n = std::min(per_batch, nrows - r0);
        // Each thread takes a contiguous slice of rows; rows are independent, so the bytes never
        // depend on the thread count.
        const int nt = static_cast<int>(std::clamp<int64_t>(n_threads, 1, n));
        auto work = [&](int ti) {
            const int64_t a = n * ti / nt, b = n * (ti + 1) / nt;
            for (int64_t r = a; r < b; ++r)
                src.dequantize_row(t.data + static_cast<size_t>(r0 + r) * src_row, f32.data() + r * ne0, ne0);
            if (b > a)
                dst.quantize_rows(f32.data() + a * ne0, out.data() + static_cast<size_t>(a) * dst_row, b - a, ne0, qw);
        };
        std::vector<std::thread> pool;
        for (int ti = 1; ti < nt; ++ti) pool.emplace_back(work, ti);
        work(0);
        for (auto& th : pool) th.join();
        w.write_tensor_data(out.data(), static_cast<size_t>(n) * dst_row);
    }
}

}  // namespace

QuantizeStats quantize_model(const QuantizeOptions& opt) {
    const auto t_start = std::chrono::steady_clock::now();
    auto in = GgufFile::open(opt.input);
    const LadderType& lt = ladder_type(opt.ftype);

    Imatrix im;
    const bool has_imatrix = !opt.imatrix_path.empty();
    if (has_imatrix) im = load_imatrix(opt.imatrix_path);
    if (lt.needs_imatrix && !has_imatrix)
        throw_error(std::string(lt.name) + " needs an importance matrix: pass --imatrix FILE (make one with `gemma imatrix`)");

    const std::string arch = in->get_string("general.architecture", "");
    const uint64_t n_head = in->get_uint(arch + ".attention.head_count", 1);
    const uint64_t n_head_kv = in->get_uint(arch + ".attention.head_count_kv", n_head);
    std::set<int> layers;
    for (const auto& t : in->tensors())
        if (int l = layer_of(t.name); l >= 0) layers.insert(l);
    const int n_layer = static_cast<int>(in->get_uint(arch + ".block_count", layers.size()));
    const bool has_output = in->find_tensor("output.weight") != nullptr;

    GgufWriter w(opt.output, static_cast<uint32_t>(in->alignment()));
    for (const auto& kv : in->kvs()) {
        if (kv.key == "general.quantization_version" || kv.key == "general.file_type" || kv.key.rfind("split.", 0) == 0)
            continue;
        w.set(kv.key, kv.value);
    }
    w.set_append("general.quantization_version", GgufValue::u32(2));
    w.set_append("general.file_type", GgufValue::u32(static_cast<uint32_t>(opt.ftype)));
    if (has_imatrix) {
        w.set_append("quantize.imatrix.file", GgufValue::string(opt.imatrix_path.substr(0, 127)));
        if (!im.datasets.empty()) w.set_append("quantize.imatrix.dataset", GgufValue::string(im.datasets[0]));
        w.set_append("quantize.imatrix.entries_count", GgufValue::u32(static_cast<uint32_t>(im.entries.size())));
        if (im.chunk_count > 0) w.set_append("quantize.imatrix.chunks_count", GgufValue::u32(im.chunk_count));
    }

    // Decide every type before writing anything, so bad input fails before an output file exists.
    const auto order = loader_order(*in);
    std::vector<TypeId> types;
    std::vector<std::vector<float>> weights(order.size());
    for (size_t i = 0; i < order.size(); ++i) {
        const GgufTensor& t = *order[i];
        TypeId nt = t.type;
        if (is_quantizable(t.name, static_cast<int>(t.n_dims))) {
            TensorSite site{t.name, t.ne[0], static_cast<int>(t.n_dims), layer_of(t.name), n_layer,
                            static_cast<int>(n_head_kv ? n_head / n_head_kv : 1), has_output, has_imatrix};
            nt = choose_tensor_type(opt.ftype, site);
            if (!is_float_type(t.type) && nt != t.type && !opt.allow_requantize)
                throw_error(opt.input + ": tensor '" + t.name + "' is already quantized (" + type_name(t.type) +
                            "); requantizing loses quality, pass --allow-requantize to do it anyway");
            if (has_imatrix && nt != t.type) {
                weights[i] = im.quant_weights(t.name);
                if (!weights[i].empty() && static_cast<int64_t>(weights[i].size()) != t.ne[0] * t.ne[2]) {
                    if (tensor_role(t.name) != TensorRole::TokenEmbd)
                        throw_error(opt.imatrix_path + ": entry '" + t.name + "' has " + std::to_string(weights[i].size()) +
                                    " values, the tensor has rows of " + std::to_string(t.ne[0]));
                    weights[i].clear();
                }
            }
            if (type_requires_imatrix(nt) && weights[i].empty())
                throw_error("tensor '" + t.name + "' becomes " + type_name(nt) + ", which needs importance weights, but " +
                            (has_imatrix ? "the imatrix has no entry for it" : "no --imatrix was given"));
        }
        types.push_back(nt);
        w.add_tensor(t.name, nt, std::vector<int64_t>(t.ne, t.ne + t.n_dims));
    }
    w.write_header();

    const int n_threads = opt.threads > 0 ? opt.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    QuantizeStats st;
    for (size_t i = 0; i < order.size(); ++i) {
        const GgufTensor& t = *order[i];
        const TypeId nt = types[i];
        const uint64_t out_bytes = row_size(nt, t.ne[0]) * static_cast<uint64_t>(t.n_rows());
        if (!opt.quiet)
            std::fprintf(stderr, "[%4zu/%4zu] %-32s %-22s %6s -> %-7s %9.2f MiB -> %9.2f MiB\n", i + 1, order.size(),
                         t.name.c_str(), t.shape_string().c_str(), type_name(t.type), type_name(nt),
                         static_cast<double>(t.nbytes) / 1048576.0, static_cast<double>(out_bytes) / 1048576.0);
        if (nt == t.type) w.write_tensor_data(t.data, t.nbytes);
        else quantize_tensor(t, nt, weights[i].empty() ? nullptr : weights[i].data(), n_threads, w);
        std::vector<float>().swap(weights[i]);
        st.input_bytes += t.nbytes;
        st.output_bytes += out_bytes;
        ++st.n_tensors;
    }
    w.finish();
    st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    return st;
}

}  // namespace gemma
