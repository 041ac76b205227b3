// Model loading: GGUF open, config, weight binding.
#include "model/model.h"

namespace gemma {

std::unique_ptr<Model> Model::load(const std::string& path) {
    return from_gguf(std::shared_ptr<const GgufFile>(GgufFile::open(path)));
}

std::unique_ptr<Model> Model::from_gguf(std::shared_ptr<const GgufFile> file) {
    std::unique_ptr<Model> m(new Model());
    m->file_ = std::move(file);
    m->config_ = ModelConfig::from_gguf(*m->file_);
    m->weights_ = ModelWeights::bind(*m->file_, m->config_);
    return m;
}

}  // namespace gemma
