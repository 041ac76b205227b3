// Importance matrices as llama-imatrix writes them (GGUF and legacy .dat): load, write, and turn into quant weights.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace gemma {

struct ImatrixEntry {
    int64_t ne0 = 0;             // input columns of the weight
    std::vector<float> sums;     // [n_mat][ne0]: sum of squared activations (legacy: mean * ncall)
    std::vector<float> counts;   // [n_mat]: activation rows seen (legacy: ncall)
};

struct Imatrix {
    std::map<std::string, ImatrixEntry> entries;  // by weight name, e.g. "blk.0.attn_q.weight"
    std::vector<std::string> datasets;
    uint32_t chunk_count = 0;
    uint32_t chunk_size = 0;
    bool legacy = false;  // loaded from .dat: counts hold ncall, and a zero ncall means "values are raw"

    // The per-column weights llama-quantize passes to the quantizer (mean squared activation),
    // computed in the same float arithmetic. Empty if `name` has no entry.
    std::vector<float> quant_weights(const std::string& name) const;
};

// Load either format (GGUF is tried first, as llama-quantize does). Throws gemma::Error naming the file.
Imatrix load_imatrix(const std::string& path);
// Write in llama-imatrix's GGUF layout (keys general.type, imatrix.datasets, imatrix.chunk_count, imatrix.chunk_size).
void save_imatrix_gguf(const Imatrix& im, const std::string& path);
// Write in the legacy .dat layout (entries sorted by name; all-zero entries skipped; trailer with chunks + dataset).
void save_imatrix_dat(const Imatrix& im, const std::string& path);

}  // namespace gemma
