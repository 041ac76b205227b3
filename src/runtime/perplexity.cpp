// llama-perplexity's arithmetic (chunking, BOS per chunk, second-half scoring, double log-softmax sums)
// and its KL-divergence statistics, with the base model evaluated in the same run instead of from a file.
#include "runtime/perplexity.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "core/error.h"
#include "model/context.h"

namespace gemma {

std::string read_eval_text(const std::string& path, const std::string& what) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw_error(what + " " + path + ": cannot open the text file");
    std::stringstream ss;
    ss << f.rdbuf();
    if (f.bad()) throw_error(what + " " + path + ": read error");
    std::string text = ss.str();
    if (text.find_first_not_of(" \t\r\n") == std::string::npos)
        throw_error(what + " " + path + ": the text file is empty");
    return text;
}

std::vector<int32_t> tokenize_eval_text(const Tokenizer& tok, const std::string& text) {
    return tok.encode(text, /*add_special=*/true, /*parse_special=*/false);
}

ChunkPlan plan_chunks(size_t n_tokens, int ctx, int chunks, int64_t n_ctx_train, int min_ctx) {
    if (ctx < min_ctx)
        throw_error("--ctx " + std::to_string(ctx) + " is too small: a chunk needs at least " + std::to_string(min_ctx) +
                    " tokens");
    if (n_ctx_train > 0 && ctx > n_ctx_train)
        throw_error("--ctx " + std::to_string(ctx) + " is too large: the model's context is " +
                    std::to_string(n_ctx_train) + " tokens");
    if (n_tokens < 2 * static_cast<size_t>(ctx))
        throw_error("the text has " + std::to_string(n_tokens) + " tokens, but a context of " + std::to_string(ctx) +
                    " needs at least " + std::to_string(2 * static_cast<size_t>(ctx)) +
                    " (use a longer text or a smaller --ctx)");
    ChunkPlan p;
    p.ctx = ctx;
    p.n_chunks = static_cast<int>(n_tokens / static_cast<size_t>(ctx));
    if (chunks > 0) p.n_chunks = std::min(p.n_chunks, chunks);
    return p;
}

std::vector<int32_t> chunk_tokens(std::span<const int32_t> tokens, const ChunkPlan& plan, int c, int32_t bos,
                                  bool add_bos) {
    const size_t start = static_cast<size_t>(c) * static_cast<size_t>(plan.ctx);
    GEMMA_ASSERT(start + static_cast<size_t>(plan.ctx) <= tokens.size());
    std::vector<int32_t> out(tokens.begin() + static_cast<std::ptrdiff_t>(start),
                             tokens.begin() + static_cast<std::ptrdiff_t>(start + static_cast<size_t>(plan.ctx)));
    if (add_bos) out[0] = bos;
    return out;
}

void require_same_vocabulary(const Model& base, const std::string& base_name, const Model& model,
                             const std::string& model_name) {
    const int64_t nb = base.config().n_vocab, nm = model.config().n_vocab;
    if (nb != nm)
        throw_error(base_name + ": its vocabulary (" + std::to_string(nb) + " tokens) differs from " + model_name +
                    "'s (" + std::to_string(nm) + " tokens)");
    const GgufValue* tb = base.gguf().find("tokenizer.ggml.tokens");
    const GgufValue* tm = model.gguf().find("tokenizer.ggml.tokens");
    if (!tb || !tm) return;
    if (tb->strs.size() != tm->strs.size())
        throw_error(base_name + ": its tokenizer has " + std::to_string(tb->strs.size()) + " tokens, " + model_name +
                    "'s has " + std::to_string(tm->strs.size()));
    for (size_t i = 0; i < tb->strs.size(); ++i)
        if (tb->strs[i] != tm->strs[i])
            throw_error(base_name + ": its vocabulary differs from " + model_name + "'s (token " + std::to_string(i) +
                        " is '" + tb->strs[i] + "' there, '" + tm->strs[i] + "' here)");
}

double NllSum::ppl() const { return count > 0 ? std::exp(nll / static_cast<double>(count)) : 0.0; }

double NllSum::ppl_err() const {
    if (count < 2) return 0;
    const double mean = nll / static_cast<double>(count);
    const double var = nll2 / static_cast<double>(count) - mean * mean;
    return var > 0 ? std::sqrt(var / static_cast<double>(count - 1)) * std::exp(mean) : 0.0;
}

namespace {

// llama-perplexity's percentile of sorted values: linear interpolation between neighbours.
double percentile(const std::vector<float>& v, double p) {
    if (v.empty()) return 0;
    const double index = p * static_cast<double>(v.size() - 1);
    const size_t lower = static_cast<size_t>(index);
    if (lower + 1 >= v.size()) return v[lower];
    const double frac = index - static_cast<double>(lower);
    return (1.0 - frac) * v[lower] + frac * v[lower + 1];
}

// Everything a model accumulates over the chunks.
struct Acc {
    NllSum nll;
    double kld_sum = 0, kld_sum2 = 0;
    int64_t same_top = 0;
    std::vector<float> klds;
    PerplexityResult result;
};

// Per scored position: the model's nll, its KL-divergence from the base and whether the argmaxes agree.
struct PosScore {
    double nll = 0, kld = 0;
    bool same_top = false;
};

struct Softmax {
    float max = 0;
    int32_t imax = 0;
    double log_sum = 0;  // log(sum expf(x - max)), summed in double
};

Softmax softmax_stats(const float* x, int64_t n) {
    Softmax s;
    s.max = x[0];
    for (int64_t i = 1; i < n; ++i)
        if (x[i] > s.max) {
            s.max = x[i];
            s.imax = static_cast<int32_t>(i);
        }
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += std::exp(x[i] - s.max);
    s.log_sum = std::log(sum);
    return s;
}

}  // namespace

double token_nll(const float* logits, int64_t n_vocab, int32_t tok) {
    const Softmax s = softmax_stats(logits, n_vocab);
    return static_cast<double>(s.max) + s.log_sum - logits[tok];
}

namespace {

// Logits of rows [first, ctx) of one chunk (rows first .. ctx-2 predict the scored tokens first+1 .. ctx-1).
void eval_chunk(const Model& m, ops::ThreadPool& pool, int64_t n_batch, const std::vector<int32_t>& chunk, int first,
                std::vector<float>* logits) {
    const int ctx = static_cast<int>(chunk.size());
    ContextParams cp;
    cp.n_ctx = ctx;
    cp.n_batch = n_batch;
    cp.pool = &pool;
    Context c(m, cp);
    logits->resize(static_cast<size_t>(ctx - first) * static_cast<size_t>(m.config().n_vocab));
    c.forward(chunk, 0, ctx - first, logits->data());
}

void finish_kl(Acc& a) {
    KlStats& k = a.result.kl;
    const auto n = static_cast<double>(a.klds.size());
    k.n = static_cast<int64_t>(a.klds.size());
    if (k.n == 0) return;
    k.mean = a.kld_sum / n;
    const double var = a.kld_sum2 / n - k.mean * k.mean;
    k.mean_err = k.n > 1 && var > 0 ? std::sqrt(var / (n - 1)) : 0.0;
    std::vector<float> v = a.klds;
    std::sort(v.begin(), v.end());
    const size_t h = v.size() / 2;
    k.median = v.size() % 2 == 0 ? (static_cast<double>(v[h]) + v[h - 1]) / 2 : v[h];
    k.p99 = percentile(v, 0.99);
    k.max = v.back();
    const double p = static_cast<double>(a.same_top) / n;
    k.same_top_percent = 100.0 * p;
    k.same_top_err = k.n > 1 ? 100.0 * std::sqrt(p * (1 - p) / (n - 1)) : 0.0;
}

}  // namespace

PerplexityRun evaluate_perplexity(const Model* base, const std::vector<const Model*>& models,
                                  std::span<const int32_t> tokens, const PerplexityParams& p) {
    const Model& ref = base ? *base : *models.at(0);
    PerplexityRun run;
    run.has_base = base != nullptr;
    int64_t n_ctx_train = ref.config().n_ctx_train;
    for (const Model* m : models) n_ctx_train = std::min(n_ctx_train, m->config().n_ctx_train);
    run.plan = plan_chunks(tokens.size(), p.ctx, p.chunks, n_ctx_train, 4);
    const int64_t n_vocab = ref.config().n_vocab;
    for (const Model* m : models)
        if (m->config().n_vocab != n_vocab) throw_error("models with different vocabularies cannot be compared");
    const Vocab vocab = Vocab::from_gguf(ref.gguf());

    std::unique_ptr<ops::ThreadPool> own_pool;
    ops::ThreadPool* pool = p.pool;
    if (!pool) {
        own_pool = std::make_unique<ops::ThreadPool>(p.threads);
        pool = own_pool.get();
    }
    const int ctx = run.plan.ctx;
    const int first = ctx / 2;
    const int n_scored = ctx - 1 - first;
    const auto nv = static_cast<size_t>(n_vocab);

    Acc base_acc;
    std::vector<Acc> acc(models.size());
    std::vector<float> base_lp, logits;  // [n_scored][n_vocab]: base log-probs, a model's logits
    std::vector<int32_t> base_top(static_cast<size_t>(n_scored));
    std::vector<PosScore> scores(static_cast<size_t>(n_scored));

    for (int c = 0; c < run.plan.n_chunks; ++c) {
        const std::vector<int32_t> chunk = chunk_tokens(tokens, run.plan, c, vocab.bos(), vocab.add_bos());
        auto target = [&](int i) { return chunk[static_cast<size_t>(first + i + 1)]; };
        if (base) {
            eval_chunk(*base, *pool, p.n_batch, chunk, first, &base_lp);
            pool->parallel_for(n_scored, [&](int64_t i, int) {
                float* x = base_lp.data() + static_cast<size_t>(i) * nv;
                const Softmax s = softmax_stats(x, n_vocab);
                const auto shift = static_cast<float>(s.max + s.log_sum);
                scores[static_cast<size_t>(i)].nll = static_cast<double>(s.max) + s.log_sum - x[target(static_cast<int>(i))];
                for (size_t j = 0; j < nv; ++j) x[j] -= shift;
                base_top[static_cast<size_t>(i)] = s.imax;
            });
            for (const PosScore& s : scores) base_acc.nll.add(s.nll);
            base_acc.result.running.push_back(base_acc.nll.ppl());
        }
        for (size_t mi = 0; mi < models.size(); ++mi) {
            eval_chunk(*models[mi], *pool, p.n_batch, chunk, first, &logits);
            pool->parallel_for(n_scored, [&](int64_t i, int) {
                const float* x = logits.data() + static_cast<size_t>(i) * nv;
                const Softmax s = softmax_stats(x, n_vocab);
                PosScore& out = scores[static_cast<size_t>(i)];
                out.nll = static_cast<double>(s.max) + s.log_sum - x[target(static_cast<int>(i))];
                if (!base) return;
                const float* lb = base_lp.data() + static_cast<size_t>(i) * nv;
                const double shift = static_cast<double>(s.max) + s.log_sum;
                double kld = 0;
                for (size_t j = 0; j < nv; ++j) {
                    const double lpb = lb[j];
                    kld += std::exp(lpb) * (lpb - (static_cast<double>(x[j]) - shift));
                }
                out.kld = kld;
                out.same_top = s.imax == base_top[static_cast<size_t>(i)];
            });
            Acc& a = acc[mi];
            for (const PosScore& s : scores) {
                a.nll.add(s.nll);
                if (!base) continue;
                a.kld_sum += s.kld;
                a.kld_sum2 += s.kld * s.kld;
                a.same_top += s.same_top;
                a.klds.push_back(static_cast<float>(s.kld));
            }
            a.result.running.push_back(a.nll.ppl());
        }
        if (p.on_chunk) {
            std::vector<const PerplexityResult*> so_far;
            if (base) so_far.push_back(&base_acc.result);
            for (const Acc& a : acc) so_far.push_back(&a.result);
            p.on_chunk(c, run.plan.n_chunks, so_far);
        }
    }

    auto finish = [&](Acc& a, bool kl) {
        a.result.ppl = a.nll.ppl();
        a.result.ppl_err = a.nll.ppl_err();
        a.result.n_scored = a.nll.count;
        a.result.has_kl = kl;
        if (kl) finish_kl(a);
        return a.result;
    };
    if (base) run.base = finish(base_acc, false);
    for (Acc& a : acc) run.models.push_back(finish(a, base != nullptr));
    return run;
}

std::string format_kl_stats(const KlStats& s) {
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "Mean    KLD: %10.6f ± %10.6f\nMaximum KLD: %10.6f\n99.0%%   KLD: %10.6f\nMedian  KLD: %10.6f\n"
                  "Same top p: %6.3f ± %5.3f %%\n",
                  s.mean, s.mean_err, s.max, s.p99, s.median, s.same_top_percent, s.same_top_err);
    return buf;
}

}  // namespace gemma
