// llama-imatrix as a library: importance-matrix statistics of a model's matmul inputs over a text.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "model/model.h"
#include "quant/imatrix.h"

namespace gemma {

struct ImatrixParams {
    int ctx = 512;              // tokens per chunk (llama-imatrix -c)
    int chunks = -1;            // <= 0: every whole chunk of the text
    int threads = 0;            // <= 0: all cores
    int64_t n_batch = 512;      // tokens per forward pass (llama's n_ubatch: the >= 16-row rule applies per pass)
    std::string dataset;        // recorded in imatrix.datasets (llama-imatrix records the -f argument)
    // Drop this process's mapping of each layer's weights once the next layer starts (and of all weights
    // after each pass): the page cache still holds them, but the resident set stays near one layer, so a
    // model larger than the memory one may use can be calibrated (`gemma release` does this).
    bool drop_weight_pages = false;
    // After each chunk: its index (from 0), the chunk count, the running perplexity of the second halves.
    std::function<void(int, int, double)> on_chunk;
};

struct ImatrixRun {
    Imatrix imatrix;
    int n_chunks = 0;
    double ppl = 0;
    std::vector<double> ppl_running;
};

// For every "blk.*" matmul weight fed with >= 16 activation rows in one pass: per input column the
// float sum of squared activations, and the row count (llama-imatrix's collect_imatrix). Chunks are
// evaluated independently from an empty KV cache with BOS as their first token. Throws gemma::Error
// for bad input (ctx out of range, text too short).
ImatrixRun collect_imatrix(const Model& model, std::span<const int32_t> tokens, const ImatrixParams& p);

}  // namespace gemma
