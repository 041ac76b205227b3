// Sampling and context command-line options, declared once for every command that generates text.
#pragma once
#include <cstdint>
#include <string>

#include "runtime/sampler.h"

namespace gemma {

// Templated on the option parser (CLI::App) so the library itself does not depend on CLI11.
template <typename App>
void add_sampling_options(App& app, SamplerParams& p) {
    const char* g = "Sampling (llama.cpp's defaults and order)";
    app.add_option("--temp", p.temp, "temperature; 0 (or less) always picks the most likely token")
        ->capture_default_str()->group(g);
    app.add_option("--top-k", p.top_k, "keep the k most likely tokens; 0 turns it off")->capture_default_str()->group(g);
    app.add_option("--top-p", p.top_p, "keep the smallest set of tokens whose probability reaches p; 1 turns it off")
        ->capture_default_str()->group(g);
    app.add_option("--min-p", p.min_p, "drop tokens less likely than min_p times the most likely one; 0 turns it off")
        ->capture_default_str()->group(g);
    app.add_option("--repeat-penalty", p.penalty_repeat, "penalty for tokens seen in the last repeat-last-n; 1 is off")
        ->capture_default_str()->group(g);
    app.add_option("--repeat-last-n", p.penalty_last_n, "window of the penalties in tokens; 0 off, -1 the whole context")
        ->capture_default_str()->group(g);
    app.add_option("--presence-penalty", p.penalty_present, "subtracted once from every token seen in the window")
        ->capture_default_str()->group(g);
    app.add_option("--frequency-penalty", p.penalty_freq, "subtracted per occurrence in the window")
        ->capture_default_str()->group(g);
    app.add_option("-s,--seed", p.seed, "random seed; the same seed gives the same text (default: random)")->group(g);
}

}  // namespace gemma
