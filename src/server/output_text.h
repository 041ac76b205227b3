// A request's generated text as it streams: stop strings across token boundaries, whole UTF-8 characters, per-token records.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace gemma::server {

struct TopLogprob {
    TokenId id = kNoToken;
    std::string piece;  // the token's bytes (may be part of a UTF-8 character)
    float logprob = 0.0f;
};

// One generated token as the API reports it (logprobs): its bytes and where they start in the released text.
struct TokenRecord {
    TokenId id = kNoToken;
    std::string piece;
    float logprob = 0.0f;
    std::vector<TopLogprob> top;
    size_t text_offset = 0;  // byte offset of the piece in the whole released completion
};

// What became visible with one push(): text and the records of the tokens it completes.
struct Released {
    std::string text;
    std::vector<TokenRecord> tokens;
    bool empty() const { return text.empty() && tokens.empty(); }
};

// Holds back bytes that could still become a stop string or that end in an incomplete UTF-8 character,
// releases everything else, and cuts the text before the first stop string (which is never released).
// A token's record is released with the last of its bytes; tokens cut by a stop string are released
// only if some of their bytes precede the stop.
class OutputText {
public:
    explicit OutputText(std::vector<std::string> stop = {});

    // Appends a token's piece (possibly empty). Returns true when a stop string matched: the text before
    // it is released and nothing may be pushed any more.
    bool push(TokenRecord rec, Released* out);
    // End of generation: releases whatever is held back (it can no longer become a stop string).
    void flush(Released* out);

    const std::string& stop_matched() const { return stop_matched_; }
    size_t released_bytes() const { return released_; }

private:
    size_t stop_hold() const;
    void release_to(size_t end, bool cut, Released* out);

    std::vector<std::string> stop_;
    std::string text_;       // all bytes so far (released prefix + held tail)
    size_t released_ = 0;    // bytes of text_ already released
    std::vector<TokenRecord> pending_;  // records not yet released; text_offset = start in text_
    std::string stop_matched_;
    bool stopped_ = false;
};

}  // namespace gemma::server
