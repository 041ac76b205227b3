// Collects llama-imatrix's statistics through the forward pass's debug hook: each distinct matmul input of a block
// (the family's tensor table names it) is summed once and shared by the weights that read it (q/k/v, gate/up).
#include "runtime/imatrix_collect.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "core/error.h"
#include "core/mapped_file.h"
#include "gguf/gguf.h"
#include "model/context.h"
#include "runtime/perplexity.h"

namespace gemma {
namespace {

// The hook names of the matmul inputs and the weights each one feeds, from the family's tensor table.
struct InputSite {
    std::string hook;
    std::vector<std::string> weights;  // GGUF names without "blk.N."
};
std::vector<InputSite> input_sites(const ArchDesc& a) {
    std::vector<InputSite> sites;
    for (const TensorDef& d : a.tensors) {
        if (!d.input || !d.per_layer) continue;
        auto it = std::find_if(sites.begin(), sites.end(), [&](const InputSite& s) { return s.hook == d.input; });
        if (it == sites.end()) it = sites.insert(sites.end(), InputSite{d.input, {}});
        it->weights.emplace_back(d.gguf);
    }
    return sites;
}

struct Stat {
    int64_t ne0 = 0;
    std::vector<float> sums;
    double count = 0;
};

// llama-imatrix ignores passes with fewer rows: they are single-token decodes, not calibration data.
constexpr int64_t kMinRows = 16;

}  // namespace

ImatrixRun collect_imatrix(const Model& model, std::span<const int32_t> tokens, const ImatrixParams& p) {
    const ModelConfig& cfg = model.config();
    const ChunkPlan plan = plan_chunks(tokens.size(), p.ctx, p.chunks, cfg.n_ctx_train, static_cast<int>(kMinRows));
    const Vocab vocab = Vocab::from_gguf(model.gguf());
    const std::vector<InputSite> sites = input_sites(*cfg.desc);
    std::vector<Stat> stats(static_cast<size_t>(cfg.n_layer) * sites.size());

    ContextParams cp;
    cp.n_ctx = plan.ctx;
    cp.n_batch = p.n_batch;
    cp.n_threads = p.threads;
    Context ctx(model, cp);
    // With drop_weight_pages: each layer's mapped weights, dropped once the next layer starts.
    std::vector<std::vector<const GgufTensor*>> layer_tensors(static_cast<size_t>(cfg.n_layer));
    if (p.drop_weight_pages)
        for (const GgufTensor& t : model.gguf().tensors()) {
            int l = -1;
            if (std::sscanf(t.name.c_str(), "blk.%d.", &l) == 1 && l >= 0 && l < cfg.n_layer)
                layer_tensors[static_cast<size_t>(l)].push_back(&t);
        }
    long done_below = 0;  // layers [0, done_below) of this pass are dropped
    ctx.set_debug_hook([&](std::string_view name, const float* data, int64_t n_tok, int64_t row_len, int64_t stride) {
        if (name.substr(0, 4) != "blk.") return;
        const size_t dot = name.find('.', 4);
        if (dot == std::string_view::npos) return;
        const long layer = std::strtol(std::string(name.substr(4, dot - 4)).c_str(), nullptr, 10);
        if (layer < 0 || layer >= cfg.n_layer) return;
        for (; p.drop_weight_pages && done_below < layer; ++done_below)
            for (const GgufTensor* t : layer_tensors[static_cast<size_t>(done_below)]) release_mapped_pages(t->data, t->nbytes);
        if (n_tok < kMinRows) return;
        const std::string_view what = name.substr(dot + 1);
        for (size_t s = 0; s < sites.size(); ++s) {
            if (what != sites[s].hook) continue;
            Stat& st = stats[static_cast<size_t>(layer) * sites.size() + s];
            if (st.sums.empty()) {
                st.ne0 = row_len;
                st.sums.assign(static_cast<size_t>(row_len), 0.0f);
            }
            GEMMA_ASSERT(st.ne0 == row_len);
            float* sum = st.sums.data();
            for (int64_t r = 0; r < n_tok; ++r) {
                const float* x = data + r * stride;
                for (int64_t j = 0; j < row_len; ++j) sum[j] += x[j] * x[j];
            }
            st.count += static_cast<double>(n_tok);
        }
    });

    ImatrixRun run;
    run.n_chunks = plan.n_chunks;
    const int first = plan.ctx / 2;
    // Every row is an output, as in llama-imatrix: otherwise the last block would run on the scored rows
    // only and its attn_output/ffn inputs would see fewer rows than llama's. Passes of n_batch tokens keep
    // the logits buffer at n_batch rows whatever the chunk size.
    const int64_t n_batch = ctx.n_batch();
    std::vector<float> logits(static_cast<size_t>(n_batch) * static_cast<size_t>(cfg.n_vocab));
    NllSum nll;
    for (int c = 0; c < plan.n_chunks; ++c) {
        const std::vector<int32_t> chunk = chunk_tokens(tokens, plan, c, vocab.bos(), vocab.add_bos());
        ctx.kv_cache().clear();
        for (int64_t b0 = 0; b0 < plan.ctx; b0 += n_batch) {
            const int64_t nb = std::min<int64_t>(n_batch, plan.ctx - b0);
            ctx.forward(std::span<const int32_t>(chunk.data() + b0, static_cast<size_t>(nb)), static_cast<int32_t>(b0),
                        static_cast<int32_t>(nb), logits.data());
            if (p.drop_weight_pages) {
                for (const GgufTensor& t : model.gguf().tensors()) release_mapped_pages(t.data, t.nbytes);
                done_below = 0;
            }
            for (int64_t i = 0; i < nb; ++i) {
                const int64_t g = b0 + i;  // logits of position g predict token g + 1
                if (g < first || g >= plan.ctx - 1) continue;
                nll.add(token_nll(logits.data() + static_cast<size_t>(i) * static_cast<size_t>(cfg.n_vocab), cfg.n_vocab,
                                  chunk[static_cast<size_t>(g) + 1]));
            }
        }
        run.ppl_running.push_back(nll.ppl());
        if (p.on_chunk) p.on_chunk(c, plan.n_chunks, nll.ppl());
    }
    run.ppl = nll.ppl();

    Imatrix& im = run.imatrix;
    im.datasets = {p.dataset};
    im.chunk_count = static_cast<uint32_t>(plan.n_chunks);
    im.chunk_size = static_cast<uint32_t>(plan.ctx);
    for (int64_t l = 0; l < cfg.n_layer; ++l)
        for (size_t s = 0; s < sites.size(); ++s) {
            const Stat& st = stats[static_cast<size_t>(l) * sites.size() + s];
            if (st.sums.empty()) continue;
            for (const std::string& w : sites[s].weights) {
                ImatrixEntry e;
                e.ne0 = st.ne0;
                e.sums = st.sums;
                e.counts = {static_cast<float>(st.count)};
                im.entries["blk." + std::to_string(l) + "." + w] = std::move(e);
            }
        }
    if (im.entries.empty()) throw_error("imatrix: no matmul saw 16 or more rows; nothing was collected");
    return run;
}

}  // namespace gemma
