// Engine-independent helpers: the default context length and the KV-cache line printed at load.
#include "model/engine.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace gemma {

int64_t default_n_ctx(const Engine& engine, int64_t n_seqs) {
    const int64_t train = engine.config().n_ctx_train;
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    const double budget = pages > 0 && page > 0 ? static_cast<double>(pages) * static_cast<double>(page) / 4 : 4e9;
    const double seqs = static_cast<double>(std::max<int64_t>(n_seqs, 1));
    int64_t n = train;
    while (n > 512 && static_cast<double>(engine.cache_bytes(n)) * seqs > budget) n /= 2;
    return std::min(std::max<int64_t>(n, std::min<int64_t>(512, train)), train);
}

std::string describe_cache(const Engine& engine, const SeqCache& cache, int64_t n_seqs) {
    const ModelConfig& c = engine.config();
    int n_sliding = 0;
    for (const LayerConfig& l : c.layers) n_sliding += l.sliding;
    char buf[256];
    const double mib = static_cast<double>(cache.bytes()) * static_cast<double>(std::max<int64_t>(n_seqs, 1)) / 1048576.0;
    int n = std::snprintf(buf, sizeof buf, "KV cache: %.1f MiB for %lld positions%s (%s", mib,
                          static_cast<long long>(cache.n_ctx()), n_seqs > 1 ? " per sequence" : "",
                          type_name(engine.kv_type()));
    if (n_sliding > 0 && n > 0 && n < static_cast<int>(sizeof buf))
        n += std::snprintf(buf + n, sizeof buf - static_cast<size_t>(n), "; %d of %lld layers slide over %lld positions",
                           n_sliding, static_cast<long long>(c.n_layer), static_cast<long long>(c.n_swa));
    std::string s = buf;
    return s + ")";
}

}  // namespace gemma
