// Writes edited copies of GGUF files for tests.
#include "support/gguf_variant.h"

#include <algorithm>
#include <cstring>

#include "support/golden.h"

namespace gemma::test {

std::string write_gguf_variant(const std::string& src_path, const GgufEdit& e, const std::string& name) {
    const auto src = GgufFile::open(src_path);
    const std::string out = temp_dir() + "/" + name;
    GgufWriter w(out);
    for (const auto& kv : src->kvs()) w.set(kv.key, kv.value);
    if (e.kv) e.kv(w);
    std::vector<std::pair<const GgufTensor*, size_t>> kept;
    for (const auto& t : src->tensors()) {
        if (t.name == e.drop_tensor) continue;
        std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
        if (e.shape) e.shape(t.name, ne);
        int64_t rows = 1;
        for (size_t i = 1; i < ne.size(); ++i) rows *= ne[i];
        w.add_tensor(t.name, t.type, ne);
        kept.emplace_back(&t, row_size(t.type, ne[0]) * static_cast<size_t>(rows));
    }
    for (const auto& [n, ne] : e.add_tensors) {
        w.add_tensor(n, TypeId::F32, ne);
        int64_t count = 1;
        for (int64_t d : ne) count *= d;
        kept.emplace_back(nullptr, static_cast<size_t>(count) * sizeof(float));
    }
    w.write_header();
    for (const auto& [t, bytes] : kept) {
        std::vector<uint8_t> data(bytes, 0);
        if (t) std::memcpy(data.data(), t->data, std::min<size_t>(bytes, t->nbytes));
        w.write_tensor_data(data.data(), data.size());
    }
    w.finish();
    return out;
}

}  // namespace gemma::test
