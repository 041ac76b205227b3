// Model loading: GGUF open, config, weight binding, repacking.
#include "model/model.h"

#include <cstdlib>

namespace gemma {

std::unique_ptr<Model> Model::load(const std::string& path, const LoadOptions& opts) {
    return from_gguf(std::shared_ptr<const GgufFile>(GgufFile::open(path)), opts);
}

std::unique_ptr<Model> Model::from_gguf(std::shared_ptr<const GgufFile> file, const LoadOptions& opts) {
    std::unique_ptr<Model> m(new Model());
    m->file_ = std::move(file);
    m->config_ = ModelConfig::from_gguf(*m->file_);
    m->weights_ = ModelWeights::bind(*m->file_, m->config_);
    const char* no_repack = std::getenv("GEMMA_NO_REPACK");
    if (opts.repack && !(no_repack && *no_repack && std::string(no_repack) != "0")) m->weights_.repack();
    return m;
}

}  // namespace gemma
