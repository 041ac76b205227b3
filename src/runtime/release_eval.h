// Evaluation of ladder files against their base: perplexity, KL-divergence and generation speed, the base
// evaluated once per chunk for all files (for the release card and for `gemma verify`'s smoke test).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "runtime/perplexity.h"
#include "runtime/release_card.h"

namespace gemma {

struct LadderEvalOptions {
    ChunkPlan plan;
    int gen_tokens = 0;  // > 0: also measure decoding speed over this many tokens
    int threads = 0;
    bool repack = true;  // load files as `gemma run` does (false: no packed copies, less memory)
    std::function<void(int chunk, int n_chunks, double base_ppl)> on_chunk;
};

// Evaluates every path (the base itself may be among them: KLD 0). All files must share the base's
// vocabulary (checked, naming the file). Results by path.
std::map<std::string, ReleaseEval> evaluate_ladder(const std::string& base, const std::vector<std::string>& paths,
                                                   std::span<const int32_t> tokens, const LadderEvalOptions& o);

// An evaluation as the release manifest keeps it; `key` names the text and settings it was made with.
nlohmann::json eval_to_json(const ReleaseEval& ev, const std::string& key);
std::optional<ReleaseEval> eval_from_json(const nlohmann::json& entry, const std::string& key);

}  // namespace gemma
