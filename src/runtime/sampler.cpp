// Sampler chain with llama.cpp's exact semantics (SPEC §9), without sorting the whole vocabulary.
#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "core/error.h"

namespace gemma {
namespace {

// Total order used wherever llama.cpp sorts by logit: its std::sort leaves ties unspecified, we break
// them by id so results never depend on the library's sort.
inline bool better(const TokenCandidate& a, const TokenCandidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

// Keeps the k best of values[0..n) in out[0..k), sorted best first: a min-heap of the k best with a
// one-compare reject for everything below its root, so 256k logits cost one pass, not a sort.
size_t select_top(const float* values, size_t n, size_t k, TokenCandidate* out) {
    k = std::min(k, n);
    if (k == 0) return 0;
    auto worse = [](const TokenCandidate& a, const TokenCandidate& b) { return better(a, b); };  // heap root = worst
    for (size_t i = 0; i < k; ++i) out[i] = {static_cast<TokenId>(i), values[i], 0.0f};
    std::make_heap(out, out + k, worse);
    for (size_t i = k; i < n; ++i) {
        const float v = values[i];
        if (!(v > out[0].logit)) continue;  // ties lose to the smaller id already held; NaN never enters
        std::pop_heap(out, out + k, worse);
        out[k - 1] = {static_cast<TokenId>(i), v, 0.0f};
        std::push_heap(out, out + k, worse);
    }
    std::sort_heap(out, out + k, worse);
    return k;
}

}  // namespace

void SamplerParams::validate(int32_t n_vocab) const {
    auto bad = [](const std::string& what) { throw_error("sampling: " + what); };
    if (!std::isfinite(temp)) bad("temperature must be a number");
    if (!(top_p >= 0.0f)) bad("top_p must be between 0 and 1 (1 turns it off)");
    if (!(min_p >= 0.0f && min_p <= 1.0f)) bad("min_p must be between 0 and 1 (0 turns it off)");
    if (min_keep < 0) bad("min_keep must be >= 0");
    if (penalty_last_n < -1) bad("repeat_last_n must be >= -1 (-1: the whole context)");
    if (!(penalty_repeat > 0.0f) || !std::isfinite(penalty_repeat)) bad("repeat_penalty must be > 0");
    if (!std::isfinite(penalty_freq)) bad("frequency_penalty must be a number");
    if (!std::isfinite(penalty_present)) bad("presence_penalty must be a number");
    for (const auto& [id, bias] : logit_bias) {
        if (id < 0 || id >= n_vocab)
            bad("logit_bias token " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(n_vocab));
        if (std::isnan(bias)) bad("logit_bias of token " + std::to_string(id) + " is not a number");
    }
}

std::string SamplerParams::describe() const {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "temp %.2f, top_k %d, top_p %.2f, min_p %.2f, repeat_last_n %d, repeat_penalty %.2f, "
                  "frequency_penalty %.2f, presence_penalty %.2f",
                  static_cast<double>(temp), top_k, static_cast<double>(top_p), static_cast<double>(min_p),
                  penalty_last_n, static_cast<double>(penalty_repeat), static_cast<double>(penalty_freq),
                  static_cast<double>(penalty_present));
    return buf;
}

Sampler::Sampler(int32_t n_vocab, const SamplerParams& params, int32_t n_ctx) : n_vocab_(n_vocab), n_ctx_(n_ctx) {
    if (n_vocab <= 0) throw_error("sampler: empty vocabulary");
    work_.resize(static_cast<size_t>(n_vocab));
    cand_.resize(static_cast<size_t>(n_vocab));
    counts_.assign(static_cast<size_t>(n_vocab), 0);
    reset(params);
}

void Sampler::reset(const SamplerParams& params) {
    params.validate(n_vocab_);
    params_ = params;
    seed_ = params.seed == SamplerParams::kRandomSeed ? std::random_device{}() : params.seed;
    rng_.seed(seed_);
    const int32_t last_n = params.penalty_last_n < 0 ? std::max(n_ctx_, 1) : params.penalty_last_n;
    history_.resize(static_cast<size_t>(last_n));
    clear_history();
    n_cand_ = 0;
}

void Sampler::clear_history() {
    for (size_t i = 0; i < hist_size_; ++i) counts_[static_cast<size_t>(history_[(hist_head_ + i) % history_.size()])] = 0;
    hist_head_ = hist_size_ = 0;
}

void Sampler::accept(TokenId id) {
    if (id < 0 || id >= n_vocab_) throw_error("sampler: token id " + std::to_string(id) + " out of range");
    const size_t cap = history_.size();
    if (cap == 0) return;
    if (hist_size_ == cap) {  // evict the oldest
        --counts_[static_cast<size_t>(history_[hist_head_])];
        history_[hist_head_] = id;
        hist_head_ = (hist_head_ + 1) % cap;
    } else {
        history_[(hist_head_ + hist_size_) % cap] = id;
        ++hist_size_;
    }
    ++counts_[static_cast<size_t>(id)];
}

// llama_sampler_penalties_apply on the whole row: only tokens in the window change, so we visit those
// (each distinct one once, flagged by negating its count while the pass runs).
void Sampler::apply_penalties(float* logits) {
    const SamplerParams& p = params_;
    if (history_.empty() || (p.penalty_repeat == 1.0f && p.penalty_freq == 0.0f && p.penalty_present == 0.0f)) return;
    const size_t cap = history_.size();
    for (size_t i = 0; i < hist_size_; ++i) {
        const auto id = static_cast<size_t>(history_[(hist_head_ + i) % cap]);
        const int32_t count = counts_[id];
        if (count <= 0) continue;
        float& l = logits[id];
        // Dividing a negative logit would make the token more likely, hence the multiply.
        if (l <= 0) l *= p.penalty_repeat;
        else l /= p.penalty_repeat;
        l -= static_cast<float>(count) * p.penalty_freq + static_cast<float>(count > 0) * p.penalty_present;
        counts_[id] = -count;
    }
    for (size_t i = 0; i < hist_size_; ++i) {
        const auto id = static_cast<size_t>(history_[(hist_head_ + i) % cap]);
        if (counts_[id] < 0) counts_[id] = -counts_[id];
    }
}

// Penalties, then top-k fused with building the candidate array: the k best come straight out of the
// row, so the 256k-entry array is only materialized when top-k is off.
void Sampler::bias_and_penalize(const float* logits) {
    std::memcpy(work_.data(), logits, static_cast<size_t>(n_vocab_) * sizeof(float));
    for (const auto& [id, bias] : params_.logit_bias) work_[static_cast<size_t>(id)] += bias;
    apply_penalties(work_.data());
}

bool Sampler::load_candidates(const float* logits) {
    const auto n = static_cast<size_t>(n_vocab_);
    bias_and_penalize(logits);
    if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < n) {
        n_cand_ = select_top(work_.data(), n, static_cast<size_t>(params_.top_k), cand_.data());
        return true;
    }
    for (size_t i = 0; i < n; ++i) cand_[i] = {static_cast<TokenId>(i), work_[i], 0.0f};
    n_cand_ = n;
    if (params_.top_k <= 0) return false;
    std::sort(cand_.begin(), cand_.end(), better);  // top_k >= n_vocab: llama.cpp still sorts everything
    return true;
}

// The masked chain: candidates are the allowed tokens only (a sparse mask costs little); top-k selects
// among them. If bias or penalties sent every allowed token to -inf, they stay equally likely: the
// mask is a hard constraint, the bias a preference.
bool Sampler::load_allowed(const float* logits, const uint64_t* allowed) {
    bias_and_penalize(logits);
    n_cand_ = 0;
    float max_l = -INFINITY;
    const size_t words = (static_cast<size_t>(n_vocab_) + 63) / 64;
    for (size_t w = 0; w < words; ++w)
        for (uint64_t bits = allowed[w]; bits; bits &= bits - 1) {
            const size_t id = w * 64 + static_cast<size_t>(__builtin_ctzll(bits));
            if (id >= static_cast<size_t>(n_vocab_)) break;
            cand_[n_cand_++] = {static_cast<TokenId>(id), work_[id], 0.0f};
            max_l = std::max(max_l, work_[id]);
        }
    if (n_cand_ == 0) throw_error("sampler: the token mask allows no token");
    if (max_l == -INFINITY)
        for (size_t i = 0; i < n_cand_; ++i) cand_[i].logit = 0.0f;
    if (params_.top_k <= 0) return false;
    const size_t k = std::min(static_cast<size_t>(params_.top_k), n_cand_);
    std::partial_sort(cand_.begin(), cand_.begin() + static_cast<std::ptrdiff_t>(k),
                      cand_.begin() + static_cast<std::ptrdiff_t>(n_cand_), better);
    n_cand_ = k;
    return true;
}

TokenId Sampler::sample(const float* logits, const uint64_t* allowed) {
    const SamplerParams& p = params_;
    if (allowed && p.temp <= 0.0f) {
        load_allowed(logits, allowed);
        size_t best = 0;
        for (size_t i = 1; i < n_cand_; ++i)
            if (better(cand_[i], cand_[best])) best = i;
        cand_[0] = {cand_[best].id, cand_[best].logit, 1.0f};
        n_cand_ = 1;
        return cand_[0].id;
    }
    if (p.temp <= 0.0f) {
        // Greedy: every stage keeps the maximum and temp <= 0 leaves only the first one, so the chain
        // reduces to the first maximum of the penalized row (ties: smaller id, as our sort order).
        const auto n = static_cast<size_t>(n_vocab_);
        bias_and_penalize(logits);
        size_t best = 0;
        for (size_t i = 1; i < n; ++i)
            if (work_[i] > work_[best]) best = i;
        cand_[0] = {static_cast<TokenId>(best), work_[best], 1.0f};
        n_cand_ = 1;
        return static_cast<TokenId>(best);
    }
    const bool sorted = allowed ? load_allowed(logits, allowed) : load_candidates(logits);
    Candidates c{cand_.data(), n_cand_, sorted};
    const auto min_keep = static_cast<size_t>(p.min_keep);
    apply_top_p(c, p.top_p, min_keep);
    apply_min_p(c, p.min_p, min_keep);
    apply_temp(c, p.temp);
    n_cand_ = c.size;
    return c.data[draw(c, rng_)].id;
}

void Sampler::apply_top_k(Candidates& c, int32_t k) {
    if (k <= 0) return;
    const size_t kk = std::min(static_cast<size_t>(k), c.size);
    if (!c.sorted) {
        std::partial_sort(c.data, c.data + kk, c.data + c.size, better);
        c.sorted = true;
    }
    c.size = kk;
}

void Sampler::softmax(Candidates& c, bool sort) {
    GEMMA_ASSERT(c.size > 0);
    if (sort && !c.sorted) {
        std::sort(c.data, c.data + c.size, better);
        c.sorted = true;
    }
    float max_l = c.data[0].logit;
    if (!c.sorted)
        for (size_t i = 1; i < c.size; ++i) max_l = std::max(max_l, c.data[i].logit);
    float cum_sum = 0.0f;
    for (size_t i = 0; i < c.size; ++i) {
        const float p = expf(c.data[i].logit - max_l);
        c.data[i].p = p;
        cum_sum += p;
    }
    for (size_t i = 0; i < c.size; ++i) c.data[i].p /= cum_sum;
}

void Sampler::apply_top_p(Candidates& c, float p, size_t min_keep) {
    if (p >= 1.0f || c.size == 0) return;
    softmax(c, false);
    // Sort only as deep as the nucleus reaches: a few hundred candidates almost always suffice.
    size_t sorted_n = c.sorted ? c.size : 0;
    size_t want = std::min<size_t>(256, c.size);
    float cum_sum = 0.0f;
    size_t i = 0;
    for (;;) {
        if (sorted_n < want) {
            std::partial_sort(c.data + sorted_n, c.data + want, c.data + c.size, better);
            sorted_n = want;
        }
        for (; i < sorted_n; ++i) {
            cum_sum += c.data[i].p;
            if (cum_sum >= p && i + 1 >= min_keep) {
                c.size = i + 1;
                c.sorted = true;
                return;
            }
        }
        if (sorted_n == c.size) break;
        want = std::min(c.size, want * 4);
    }
    c.sorted = true;
}

void Sampler::apply_min_p(Candidates& c, float p, size_t min_keep) {
    if (p <= 0.0f || c.size == 0) return;
    if (!c.sorted) {
        float max_l = -std::numeric_limits<float>::max();
        for (size_t i = 0; i < c.size; ++i) max_l = std::max(max_l, c.data[i].logit);
        const float min_logit = max_l + logf(p);
        size_t n_keep = 0;
        for (size_t i = 0; i < c.size; ++i) n_keep += c.data[i].logit >= min_logit;
        if (n_keep > 0 && n_keep >= min_keep) {  // stable in-place filter, as llama.cpp's copy
            size_t o = 0;
            for (size_t i = 0; i < c.size; ++i)
                if (c.data[i].logit >= min_logit) c.data[o++] = c.data[i];
            c.size = o;
            return;
        }
        std::sort(c.data, c.data + c.size, better);
        c.sorted = true;
    }
    const float min_logit = c.data[0].logit + logf(p);
    size_t i = 1;  // the first token always stays
    for (; i < c.size; ++i)
        if (c.data[i].logit < min_logit && i >= min_keep) break;
    c.size = i;
}

void Sampler::apply_temp(Candidates& c, float temp) {
    if (c.size == 0) return;
    if (temp <= 0.0f) {
        size_t max_i = 0;
        float max_l = c.data[0].logit;
        for (size_t i = 1; i < c.size; ++i) {
            if (c.data[i].logit > max_l) {
                c.data[max_i].logit = -INFINITY;
                max_i = i;
                max_l = c.data[i].logit;
            } else {
                c.data[i].logit = -INFINITY;
            }
        }
        return;
    }
    for (size_t i = 0; i < c.size; ++i) c.data[i].logit /= temp;
}

size_t Sampler::draw(Candidates& c, std::mt19937& rng) {
    GEMMA_ASSERT(c.size > 0);
    if (c.size == 1) {
        c.data[0].p = 1.0f;
        return 0;
    }
    float max_l = c.data[0].logit;
    if (!c.sorted)
        for (size_t i = 1; i < c.size; ++i) max_l = std::max(max_l, c.data[i].logit);
    double sum_cum = 0.0;
    for (size_t i = 0; i < c.size; ++i) {
        const float p = expf(c.data[i].logit - max_l);
        c.data[i].p = p;
        sum_cum += p;
    }
    std::uniform_real_distribution<double> dist(0.0, 1.0);
    const double sum_tgt = sum_cum * dist(rng);
    double sum_run = 0.0;
    size_t selected = c.size;
    for (size_t i = 0; i < c.size; ++i) {
        if (selected == c.size) {
            sum_run += c.data[i].p;
            if (sum_run >= sum_tgt) selected = i;
        }
        c.data[i].p = static_cast<float>(c.data[i].p / sum_cum);
    }
    return selected == c.size ? c.size - 1 : selected;
}

float token_logprob(const float* logits, int32_t n_vocab, TokenId id) {
    float max_l = logits[0];
    for (int32_t i = 1; i < n_vocab; ++i) max_l = std::max(max_l, logits[i]);
    double sum = 0.0;
    for (int32_t i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - max_l);
    return static_cast<float>(static_cast<double>(logits[id]) - max_l - std::log(sum));
}

float Sampler::logprobs(const float* logits, TokenId chosen, int32_t n, LogprobSource src,
                        std::vector<TokenLogprob>* out_top) {
    const size_t want = n > 0 ? static_cast<size_t>(n) : 0;
    if (src == LogprobSource::Model) {
        float max_l = logits[0];
        for (int32_t i = 1; i < n_vocab_; ++i) max_l = std::max(max_l, logits[i]);
        double sum = 0.0;
        for (int32_t i = 0; i < n_vocab_; ++i) sum += std::exp(static_cast<double>(logits[i]) - max_l);
        const double lse = static_cast<double>(max_l) + std::log(sum);
        if (out_top) {
            const size_t k = std::min(want, static_cast<size_t>(n_vocab_));
            if (top_scratch_.size() < k) top_scratch_.resize(k);  // grows once per larger n, not per token
            select_top(logits, static_cast<size_t>(n_vocab_), k, top_scratch_.data());
            out_top->resize(k);
            for (size_t i = 0; i < k; ++i)
                (*out_top)[i] = {top_scratch_[i].id,
                                 static_cast<float>(static_cast<double>(top_scratch_[i].logit) - lse)};
        }
        return static_cast<float>(static_cast<double>(logits[chosen]) - lse);
    }
    float chosen_lp = -INFINITY;
    for (size_t i = 0; i < n_cand_; ++i)
        if (cand_[i].id == chosen) chosen_lp = std::log(cand_[i].p);
    if (out_top) {
        out_top->resize(std::min(want, n_cand_));
        // Partial selection by p (ties: smaller id) without disturbing cand_.
        auto by_p = [](const TokenLogprob& a, const TokenLogprob& b) {
            return a.logprob > b.logprob || (a.logprob == b.logprob && a.id < b.id);
        };
        size_t filled = 0;
        for (size_t i = 0; i < n_cand_ && !out_top->empty(); ++i) {
            const TokenLogprob t{cand_[i].id, std::log(cand_[i].p)};
            if (filled < out_top->size()) {
                (*out_top)[filled++] = t;
                std::push_heap(out_top->begin(), out_top->begin() + static_cast<std::ptrdiff_t>(filled), by_p);
            } else if (by_p(t, out_top->front())) {
                std::pop_heap(out_top->begin(), out_top->end(), by_p);
                out_top->back() = t;
                std::push_heap(out_top->begin(), out_top->end(), by_p);
            }
        }
        std::sort_heap(out_top->begin(), out_top->end(), by_p);
    }
    return chosen_lp;
}

}  // namespace gemma
