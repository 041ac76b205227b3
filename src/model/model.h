// A loaded Gemma model: the mapped GGUF file, its config and its bound weights. Immutable, shareable.
#pragma once
#include <memory>
#include <string>

#include "gguf/gguf.h"
#include "model/config.h"
#include "model/weights.h"

namespace gemma {

struct LoadOptions {
    // Copy matrices of every type with a row-interleaved layout (kernels::packable; ModelWeights::repack): faster
    // matmuls for the price of holding those weights in memory rather than in the page cache.
    // GEMMA_NO_REPACK=1 in the environment turns it off for every load.
    bool repack = true;
};

class Model {
public:
    // Maps `path`, reads the config, binds and checks every tensor. Throws gemma::Error on any problem.
    static std::unique_ptr<Model> load(const std::string& path, const LoadOptions& opts = {});
    // Same from a file already opened (the tokenizer may share it); `file` must stay alive.
    static std::unique_ptr<Model> from_gguf(std::shared_ptr<const GgufFile> file, const LoadOptions& opts = {});

    const ModelConfig& config() const { return config_; }
    const ModelWeights& weights() const { return weights_; }
    const GgufFile& gguf() const { return *file_; }
    std::shared_ptr<const GgufFile> gguf_shared() const { return file_; }

private:
    Model() = default;
    std::shared_ptr<const GgufFile> file_;
    ModelConfig config_;
    ModelWeights weights_;
};

}  // namespace gemma
