// Compares GGUF files key by key and tensor by tensor (see gguf_compare.h).
#include "support/gguf_compare.h"

#include <cstring>
#include <vector>

#include "gguf/gguf.h"

namespace gemma::test {

std::string tensor_difference(const std::string& pa, const std::string& pb) {
    const auto a = GgufFile::open(pa), b = GgufFile::open(pb);
    if (a->tensors().size() != b->tensors().size())
        return std::to_string(a->tensors().size()) + " vs " + std::to_string(b->tensors().size()) + " tensors";
    for (size_t i = 0; i < a->tensors().size(); ++i) {
        const GgufTensor& x = a->tensors()[i];
        const GgufTensor& y = b->tensors()[i];
        if (x.name != y.name) return "tensor " + std::to_string(i) + ": " + x.name + " vs " + y.name;
        if (x.type != y.type) return x.name + ": " + type_name(x.type) + " vs " + type_name(y.type);
        if (x.shape_string() != y.shape_string()) return x.name + ": " + x.shape_string() + " vs " + y.shape_string();
        if (x.nbytes != y.nbytes || std::memcmp(x.data, y.data, x.nbytes) != 0) return x.name + ": different bytes";
    }
    return "";
}

std::string gguf_difference(const std::string& pa, const std::string& pb, const std::set<std::string>& ignore) {
    const auto a = GgufFile::open(pa), b = GgufFile::open(pb);
    std::vector<const GgufKv*> ka, kb;
    for (const GgufKv& kv : a->kvs())
        if (!ignore.count(kv.key)) ka.push_back(&kv);
    for (const GgufKv& kv : b->kvs())
        if (!ignore.count(kv.key)) kb.push_back(&kv);
    for (size_t i = 0; i < std::max(ka.size(), kb.size()); ++i) {
        if (i >= ka.size()) return "only the second has key " + kb[i]->key;
        if (i >= kb.size()) return "only the first has key " + ka[i]->key;
        if (ka[i]->key != kb[i]->key) return "key " + std::to_string(i) + ": " + ka[i]->key + " vs " + kb[i]->key;
        if (!gguf_values_equal(ka[i]->value, kb[i]->value)) return "key " + ka[i]->key + ": different values";
    }
    if (a->alignment() != b->alignment()) return "different alignment";
    return tensor_difference(pa, pb);
}

}  // namespace gemma::test
