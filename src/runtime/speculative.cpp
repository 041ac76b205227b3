// Drafting with a small model and the standard accept/reject verification (greedy: token equality).
#include "runtime/speculative.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace gemma {

void DraftParams::validate() const {
    if (n_max < 1) throw_error("--draft-max must be at least 1");
    if (n_min < 0 || n_min > n_max) throw_error("--draft-min must be between 0 and --draft-max");
    if (!(p_min >= 0.0f && p_min <= 1.0f)) throw_error("--draft-p-min must be between 0 and 1");
}

void check_same_vocab(const Vocab& target, const Vocab& draft, const std::string& draft_name) {
    if (target.size() != draft.size())
        throw_error(draft_name + ": the draft model's vocabulary has " + std::to_string(draft.size()) +
                    " tokens, the target's " + std::to_string(target.size()) + " (a draft must share the vocabulary)");
    for (TokenId id = 0; id < target.size(); ++id)
        if (target.text(id) != draft.text(id))
            throw_error(draft_name + ": the draft model's vocabulary differs from the target's at token " +
                        std::to_string(id) + " ('" + draft.text(id) + "' vs '" + target.text(id) +
                        "'); a draft must share the vocabulary");
}

Drafter::Drafter(Context& draft, const DraftParams& params)
    : ctx_(draft), params_(params),
      sampler_(static_cast<int32_t>(draft.config().n_vocab), SamplerParams{}, static_cast<int32_t>(draft.n_ctx())) {
    params_.validate();
    cached_.reserve(static_cast<size_t>(draft.n_ctx()));
}

void Drafter::clear() {
    cached_.clear();
    ctx_.kv_cache().clear();
}

void Drafter::start(const SamplerParams& sampling) {
    SamplerParams sp = sampling;  // the draft's own penalties would only make q differ more from p
    sp.penalty_repeat = 1.0f;
    sp.penalty_freq = sp.penalty_present = 0.0f;
    sp.seed = sampling.seed == SamplerParams::kRandomSeed ? sampling.seed : sampling.seed ^ 0x5BD1E995u;
    sampler_.reset(sp);
    greedy_ = sampling.temp <= 0.0f;
}

std::span<const TokenId> Drafter::propose(std::span<const TokenId> history, int32_t n_max) {
    out_.clear();
    const int32_t room = static_cast<int32_t>(ctx_.n_ctx() - static_cast<int64_t>(history.size()));
    n_max = std::min({n_max, params_.n_max, room});
    if (history.empty() || n_max < std::max(params_.n_min, 1)) return {};
    // Catch the draft cache up with the target's tokens: keep the common prefix (the last token is always
    // evaluated again for its logits), roll back past what the target rejected.
    if (static_cast<int64_t>(cached_.size()) > ctx_.n_past()) cached_.resize(static_cast<size_t>(ctx_.n_past()));
    const size_t common = static_cast<size_t>(
        std::mismatch(cached_.begin(), cached_.end(), history.begin(), history.end()).first - cached_.begin());
    size_t keep = std::min(common, history.size() - 1);
    keep = static_cast<size_t>(ctx_.kv_cache().resume_point(static_cast<int64_t>(keep)));
    cached_.resize(keep);
    ctx_.kv_cache().set_n_past(static_cast<int64_t>(keep));
    const float* logits = ctx_.eval(history.subspan(keep));
    cached_.insert(cached_.end(), history.begin() + static_cast<ptrdiff_t>(keep), history.end());

    const bool greedy = greedy_;
    const auto n_vocab = static_cast<int32_t>(ctx_.config().n_vocab);
    if (q_.size() < static_cast<size_t>(n_max)) q_.resize(static_cast<size_t>(n_max));
    for (int32_t i = 0; i < n_max; ++i) {
        const TokenId tok = sampler_.sample(logits);
        const float prob = greedy ? std::exp(token_logprob(logits, n_vocab, tok)) : [&] {
            float pr = 0.0f;
            for (const TokenCandidate& c : sampler_.candidates())
                if (c.id == tok) pr = c.p;
            return pr;
        }();
        if (i >= params_.n_min && prob < params_.p_min) break;
        if (!greedy) {
            const auto c = sampler_.candidates();
            q_[static_cast<size_t>(i)].cand.assign(c.begin(), c.end());
        }
        out_.push_back(tok);
        if (i + 1 == n_max) break;
        logits = ctx_.decode(tok);
        cached_.push_back(tok);
    }
    if (static_cast<int32_t>(out_.size()) < params_.n_min) out_.clear();
    return out_;
}

int32_t verify_drafts(Sampler& target, const float* rows, int64_t n_vocab, std::span<const TokenId> drafts,
                      std::span<const TokenDist> q_all, std::mt19937& rng, std::vector<float>& scratch,
                      std::vector<TokenId>* emitted) {
    const bool greedy = target.params().temp <= 0.0f;
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);
    for (size_t i = 0; i < drafts.size(); ++i) {
        const float* row = rows + static_cast<int64_t>(i) * n_vocab;
        const TokenId x = target.sample(row);  // greedy: the target's choice; sampling: fills p (the draw is unused)
        const TokenId d = drafts[i];
        if (greedy) {
            target.accept(x);
            emitted->push_back(x);
            if (x != d) return static_cast<int32_t>(i);
            continue;
        }
        GEMMA_ASSERT(i < q_all.size());
        const auto p = target.candidates();
        const auto& q = q_all[i].cand;
        for (const TokenCandidate& c : q) scratch[static_cast<size_t>(c.id)] = c.p;
        float pd = 0.0f;
        for (const TokenCandidate& c : p)
            if (c.id == d) pd = c.p;
        const float qd = scratch[static_cast<size_t>(d)];
        TokenId keep = d;
        if (!(qd > 0.0f && unit(rng) * qd < pd)) {
            // Rejected: draw from the part of p that q under-covers.
            double total = 0.0;
            for (const TokenCandidate& c : p) total += std::max(0.0f, c.p - scratch[static_cast<size_t>(c.id)]);
            keep = x;  // p == q exactly leaves no residual (and cannot reject): the target's own draw
            if (total > 0.0) {
                double r = static_cast<double>(unit(rng)) * total;
                for (const TokenCandidate& c : p) {
                    const double w = std::max(0.0f, c.p - scratch[static_cast<size_t>(c.id)]);
                    if (w <= 0.0) continue;
                    keep = c.id;
                    if ((r -= w) < 0.0) break;
                }
            }
        }
        for (const TokenCandidate& c : q) scratch[static_cast<size_t>(c.id)] = 0.0f;
        target.accept(keep);
        emitted->push_back(keep);
        if (keep != d) return static_cast<int32_t>(i);
    }
    // Every draft kept: the last row gives one more token, drawn as plain decoding draws it.
    const TokenId x = target.sample(rows + static_cast<int64_t>(drafts.size()) * n_vocab);
    target.accept(x);
    emitted->push_back(x);
    return static_cast<int32_t>(drafts.size());
}

}  // namespace gemma
