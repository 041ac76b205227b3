// Importance-matrix I/O in both of llama-imatrix's formats, with every field validated.
#include "quant/imatrix.h"

#include <cmath>
#include <cstring>
#include <fstream>

#include "core/error.h"
#include "core/mapped_file.h"
#include "gguf/gguf.h"

namespace gemma {

std::vector<float> Imatrix::quant_weights(const std::string& name) const {
    auto it = entries.find(name);
    if (it == entries.end()) return {};
    const ImatrixEntry& e = it->second;
    std::vector<float> w(e.sums.size());
    for (size_t j = 0; j < e.counts.size(); ++j) {
        const float c = e.counts[j];
        for (int64_t i = 0; i < e.ne0; ++i) {
            const size_t k = j * static_cast<size_t>(e.ne0) + static_cast<size_t>(i);
            if (legacy) w[k] = c > 0 ? e.sums[k] / c : e.sums[k];
            else w[k] = c > 0.0f ? e.sums[k] / c : 1.0f;
        }
    }
    return w;
}

namespace {

bool ends_with(const std::string& s, const std::string& suf) {
    return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

Imatrix load_gguf(const GgufFile& f) {
    const std::string& path = f.path();
    Imatrix im;
    const GgufValue* ds = f.find("imatrix.datasets");
    if (!ds || !f.find("imatrix.chunk_count") || !f.find("imatrix.chunk_size"))
        throw_error(path + ": GGUF imatrix lacks the imatrix.datasets / imatrix.chunk_count / imatrix.chunk_size keys");
    if (!ds->is_array() || ds->elem_type != GgufType::STRING)
        throw_error(path + ": imatrix.datasets must be an array of strings");
    im.datasets = ds->strs;
    im.chunk_count = static_cast<uint32_t>(f.get_uint("imatrix.chunk_count"));
    im.chunk_size = static_cast<uint32_t>(f.get_uint("imatrix.chunk_size"));
    for (const GgufTensor& t : f.tensors()) {
        if (!ends_with(t.name, ".in_sum2")) continue;
        const std::string name = t.name.substr(0, t.name.size() - 8);
        const GgufTensor* c = f.find_tensor(name + ".counts");
        if (!c) throw_error(path + ": tensor '" + t.name + "' has no matching '" + name + ".counts'");
        if (t.type != TypeId::F32 || c->type != TypeId::F32)
            throw_error(path + ": imatrix tensors of '" + name + "' must be f32");
        const int64_t ne0 = t.ne[0], n_mat = t.n_rows();
        if (c->n_elements() != n_mat)
            throw_error(path + ": '" + name + ".counts' has " + std::to_string(c->n_elements()) + " values, expected " +
                        std::to_string(n_mat));
        ImatrixEntry e;
        e.ne0 = ne0;
        e.sums.resize(static_cast<size_t>(ne0 * n_mat));
        e.counts.resize(static_cast<size_t>(n_mat));
        std::memcpy(e.sums.data(), t.data, e.sums.size() * 4);
        std::memcpy(e.counts.data(), c->data, e.counts.size() * 4);
        im.entries[name] = std::move(e);
    }
    for (const GgufTensor& t : f.tensors())
        if (ends_with(t.name, ".counts") && !f.find_tensor(t.name.substr(0, t.name.size() - 7) + ".in_sum2"))
            throw_error(path + ": tensor '" + t.name + "' has no matching in_sum2 tensor");
    return im;
}

Imatrix load_legacy(const std::string& path) {
    MappedFile m(path);
    const uint8_t* p = m.data();
    const size_t n = m.size();
    size_t pos = 0;
    auto need = [&](size_t k, const char* what) {
        if (k > n - pos)
            throw_error(path + ": not a GGUF file, and as a legacy imatrix it is truncated reading " + what +
                        " at byte " + std::to_string(pos));
    };
    auto rd_i32 = [&](const char* what) {
        need(4, what);
        int32_t v;
        std::memcpy(&v, p + pos, 4);
        pos += 4;
        return v;
    };
    Imatrix im;
    im.legacy = true;
    const int32_t n_entries = rd_i32("the entry count");
    if (n_entries < 0 || static_cast<size_t>(n_entries) > n / 12)
        throw_error(path + ": not a GGUF file, and as a legacy imatrix its entry count " + std::to_string(n_entries) +
                    " is impossible");
    for (int32_t i = 0; i < n_entries; ++i) {
        const int32_t len = rd_i32("a name length");
        if (len <= 0 || len > 1024) throw_error(path + ": legacy imatrix entry " + std::to_string(i) + " has a bad name length");
        need(static_cast<size_t>(len), "a name");
        std::string name(reinterpret_cast<const char*>(p + pos), static_cast<size_t>(len));
        pos += static_cast<size_t>(len);
        const int32_t ncall = rd_i32("ncall");
        const int32_t nval = rd_i32("nval");
        if (ncall < 0 || nval <= 0) throw_error(path + ": legacy imatrix entry '" + name + "' has bad ncall/nval");
        need(static_cast<size_t>(nval) * 4, "values");
        ImatrixEntry e;
        e.ne0 = nval;
        e.sums.resize(static_cast<size_t>(nval));
        std::memcpy(e.sums.data(), p + pos, e.sums.size() * 4);
        pos += e.sums.size() * 4;
        e.counts = {static_cast<float>(ncall)};
        im.entries[name] = std::move(e);
    }
    if (n - pos >= 8) {  // optional trailer: chunk count and dataset name
        const int32_t chunks = rd_i32("the chunk count");
        const int32_t len = rd_i32("the dataset name length");
        if (chunks >= 0 && len > 0 && static_cast<size_t>(len) <= n - pos) {
            im.chunk_count = static_cast<uint32_t>(chunks);
            im.datasets.emplace_back(reinterpret_cast<const char*>(p + pos), static_cast<size_t>(len));
            pos += static_cast<size_t>(len);
        }
    }
    return im;
}

}  // namespace

Imatrix load_imatrix(const std::string& path) {
    Imatrix im;
    std::unique_ptr<GgufFile> f;
    try {
        f = GgufFile::open(path);
    } catch (const Error& e) {
        MappedFile probe(path);  // rethrows "cannot open" for missing files
        if (probe.size() >= 4 && std::memcmp(probe.data(), "GGUF", 4) == 0) throw;  // a broken GGUF, not legacy
        f.reset();
    }
    im = f ? load_gguf(*f) : load_legacy(path);
    for (const auto& [name, e] : im.entries)
        for (float v : e.sums)
            if (!std::isfinite(v)) throw_error(path + ": imatrix entry '" + name + "' has non-finite values");
    if (im.entries.empty()) throw_error(path + ": imatrix has no entries");
    return im;
}

void save_imatrix_gguf(const Imatrix& im, const std::string& path) {
    GgufWriter w(path);
    w.set("general.type", GgufValue::string("imatrix"));
    w.set("imatrix.datasets", GgufValue::string_array(im.datasets));
    w.set("imatrix.chunk_count", GgufValue::u32(im.chunk_count));
    w.set("imatrix.chunk_size", GgufValue::u32(im.chunk_size));
    for (const auto& [name, e] : im.entries) {  // std::map: names sorted, as llama-imatrix writes them
        const auto n_mat = static_cast<int64_t>(e.counts.size());
        w.add_tensor(name + ".in_sum2", TypeId::F32, {e.ne0, n_mat});
        w.add_tensor(name + ".counts", TypeId::F32, {1, n_mat});
    }
    w.write_header();
    for (const auto& [name, e] : im.entries) {
        w.write_tensor_data(e.sums.data(), e.sums.size() * 4);
        w.write_tensor_data(e.counts.data(), e.counts.size() * 4);
    }
    w.finish();
}

void save_imatrix_dat(const Imatrix& im, const std::string& path) {
    const std::string tmp = path + ".tmp";
    std::ofstream out(tmp, std::ios::binary);
    if (!out) throw_error(path + ": cannot create output file");
    auto w32 = [&](int32_t v) { out.write(reinterpret_cast<const char*>(&v), 4); };
    std::vector<const std::pair<const std::string, ImatrixEntry>*> keep;
    for (const auto& kv : im.entries) {
        float mx = 0;
        for (float c : kv.second.counts) mx = std::max(mx, c);
        if (mx > 0) keep.push_back(&kv);
    }
    w32(static_cast<int32_t>(keep.size()));
    for (const auto* kv : keep) {
        const ImatrixEntry& e = kv->second;
        float mx = 0;
        for (float c : e.counts) mx = std::max(mx, c);
        const int32_t ncall = im.chunk_size ? static_cast<int32_t>(std::ceil(mx / static_cast<float>(im.chunk_size))) : 1;
        w32(static_cast<int32_t>(kv->first.size()));
        out.write(kv->first.data(), static_cast<std::streamsize>(kv->first.size()));
        w32(ncall);
        w32(static_cast<int32_t>(e.sums.size()));
        for (size_t j = 0; j < e.counts.size(); ++j)
            for (int64_t i = 0; i < e.ne0; ++i) {
                const float c = e.counts[j];
                const float v = c > 0 ? (e.sums[j * static_cast<size_t>(e.ne0) + static_cast<size_t>(i)] / c) * static_cast<float>(ncall)
                                      : static_cast<float>(ncall);
                out.write(reinterpret_cast<const char*>(&v), 4);
            }
    }
    w32(static_cast<int32_t>(im.chunk_count));
    const std::string ds = im.datasets.empty() ? std::string() : im.datasets[0];
    w32(static_cast<int32_t>(ds.size()));
    out.write(ds.data(), static_cast<std::streamsize>(ds.size()));
    out.close();
    if (!out || std::rename(tmp.c_str(), path.c_str()) != 0) throw_error(path + ": write failed");
}

}  // namespace gemma
