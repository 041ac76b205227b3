// One pass over the evaluation chunks for a base and any number of ladder files, then decoding speed.
#include "runtime/release_eval.h"

#include <chrono>
#include <memory>

#include "model/context.h"
#include "model/model.h"

namespace gemma {
namespace {

double measure_generation(const Model& m, ops::ThreadPool& pool, std::span<const int32_t> tokens, int n_gen) {
    ContextParams cp;
    cp.n_ctx = n_gen + 16;
    cp.pool = &pool;
    Context c(m, cp);
    auto tok = [&](size_t i) { return tokens[i % tokens.size()]; };
    std::vector<int32_t> prompt;
    for (size_t i = 0; i < 8; ++i) prompt.push_back(tok(i));
    c.eval(prompt);
    c.decode(tok(8));  // warm-up: pages the weights in
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n_gen; ++i) c.decode(tok(9 + static_cast<size_t>(i)));
    return n_gen / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

std::map<std::string, ReleaseEval> evaluate_ladder(const std::string& base_path, const std::vector<std::string>& paths,
                                                   std::span<const int32_t> tokens, const LadderEvalOptions& o) {
    ops::ThreadPool pool(o.threads);
    LoadOptions lo;
    lo.repack = o.repack;
    const auto base = Model::load(base_path, lo);
    std::vector<std::unique_ptr<Model>> owned;
    std::vector<const Model*> models;
    std::vector<std::string> names;
    bool with_base = false;
    for (const std::string& p : paths) {
        if (p == base_path) {
            with_base = true;
            continue;
        }
        owned.push_back(Model::load(p, lo));
        require_same_vocabulary(*base, base_path, *owned.back(), p);
        models.push_back(owned.back().get());
        names.push_back(p);
    }
    PerplexityParams pp;
    pp.ctx = o.plan.ctx;
    pp.chunks = o.plan.n_chunks;
    pp.pool = &pool;
    pp.on_chunk = [&](int c, int n, const std::vector<const PerplexityResult*>& r) {
        if (o.on_chunk) o.on_chunk(c, n, r[0]->running.back());
    };
    const PerplexityRun run = evaluate_perplexity(base.get(), models, tokens, pp);
    std::map<std::string, ReleaseEval> out;
    if (with_base) {
        ReleaseEval be;
        be.ppl = run.base.ppl;
        be.ppl_err = run.base.ppl_err;
        be.same_top_percent = 100;
        if (o.gen_tokens > 0) be.gen_tokens_per_s = measure_generation(*base, pool, tokens, o.gen_tokens);
        out[base_path] = be;
    }
    for (size_t k = 0; k < models.size(); ++k) {
        const PerplexityResult& r = run.models[k];
        ReleaseEval ev;
        ev.ppl = r.ppl;
        ev.ppl_err = r.ppl_err;
        ev.kld_mean = r.kl.mean;
        ev.kld_median = r.kl.median;
        ev.kld_p99 = r.kl.p99;
        ev.kld_max = r.kl.max;
        ev.same_top_percent = r.kl.same_top_percent;
        if (o.gen_tokens > 0) ev.gen_tokens_per_s = measure_generation(*models[k], pool, tokens, o.gen_tokens);
        out[names[k]] = ev;
    }
    return out;
}

std::optional<ReleaseEval> eval_from_json(const nlohmann::json& e, const std::string& key) {
    if (!e.contains("eval") || e["eval"].value("key", "") != key) return std::nullopt;
    const nlohmann::json& v = e["eval"];
    ReleaseEval ev;
    ev.ppl = v.value("ppl", 0.0);
    ev.ppl_err = v.value("ppl_err", 0.0);
    ev.kld_mean = v.value("kld_mean", 0.0);
    ev.kld_median = v.value("kld_median", 0.0);
    ev.kld_p99 = v.value("kld_p99", 0.0);
    ev.kld_max = v.value("kld_max", 0.0);
    ev.same_top_percent = v.value("same_top_percent", 0.0);
    ev.gen_tokens_per_s = v.value("gen_tokens_per_s", 0.0);
    return ev;
}

nlohmann::json eval_to_json(const ReleaseEval& ev, const std::string& key) {
    return nlohmann::json{{"key", key},           {"ppl", ev.ppl},           {"ppl_err", ev.ppl_err},
                {"kld_mean", ev.kld_mean}, {"kld_median", ev.kld_median}, {"kld_p99", ev.kld_p99},
                {"kld_max", ev.kld_max},  {"same_top_percent", ev.same_top_percent},
                {"gen_tokens_per_s", ev.gen_tokens_per_s}};
}

}  // namespace gemma
