// Loading a draft model next to a target context.
#include "runtime/context_options.h"

namespace gemma {

LoadedDraft load_draft(const DraftOptions& o, Context& target, const Vocab& target_vocab) {
    LoadedDraft d;
    if (o.model.empty()) return d;
    o.params.validate();
    d.model = Model::load(o.model);
    check_same_vocab(target_vocab, Vocab::from_gguf(d.model->gguf()), o.model);
    ContextParams cp;
    cp.n_ctx = target.n_ctx();
    cp.n_batch = target.n_batch();
    cp.kv_type = target.engine().kv_type();
    cp.pool = &target.pool();  // one set of threads: the two models never run at once
    d.ctx = std::make_unique<Context>(*d.model, cp);
    d.drafter = std::make_unique<Drafter>(*d.ctx, o.params);
    return d;
}

}  // namespace gemma
