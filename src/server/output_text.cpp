// Stop-string matching and UTF-8-safe release of generated text, with the token records that go with it.
#include "server/output_text.h"

#include <algorithm>

#include "tokenizer/tokenizer.h"

namespace gemma::server {

OutputText::OutputText(std::vector<std::string> stop) : stop_(std::move(stop)) {
    std::erase_if(stop_, [](const std::string& s) { return s.empty(); });
}

size_t OutputText::stop_hold() const {
    // Longest unreleased tail that could still grow into a stop string.
    size_t hold = 0;
    const std::string_view tail = std::string_view(text_).substr(released_);
    for (const std::string& s : stop_) {
        for (size_t len = std::min(s.size() - 1, tail.size()); len > hold; --len) {
            if (tail.substr(tail.size() - len) == std::string_view(s).substr(0, len)) {
                hold = len;
                break;
            }
        }
    }
    return hold;
}

void OutputText::release_to(size_t end, bool cut, Released* out) {
    if (end > released_) out->text.append(text_, released_, end - released_);
    released_ = std::max(released_, end);
    size_t k = 0;
    for (; k < pending_.size(); ++k) {
        const TokenRecord& r = pending_[k];
        // A cut keeps the tokens that contributed visible bytes; otherwise a token waits for all of its bytes.
        const bool done = cut ? r.text_offset < end : r.text_offset + r.piece.size() <= end;
        if (!done) break;
        out->tokens.push_back(std::move(pending_[k]));
    }
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(k));
    if (cut) pending_.clear();
}

bool OutputText::push(TokenRecord rec, Released* out) {
    if (stopped_) return true;
    rec.text_offset = text_.size();
    text_ += rec.piece;
    pending_.push_back(std::move(rec));
    // Released bytes never start a stop string (their tail would have been held), so search the rest only.
    size_t stop_at = std::string::npos;
    for (const std::string& s : stop_) {
        const size_t pos = text_.find(s, released_);
        if (pos < stop_at) {
            stop_at = pos;
            stop_matched_ = s;
        }
    }
    if (stop_at != std::string::npos) {
        release_to(stop_at, true, out);
        text_.resize(stop_at);
        stopped_ = true;
        return true;
    }
    const std::string_view tail = std::string_view(text_).substr(released_);
    size_t n = text_.size() - std::max(stop_hold(), utf8_incomplete_tail(tail));
    // Never cut a character in two, even for a stop string that starts inside one.
    for (int back = 0; back < 3 && n > released_ && n < text_.size() &&
                       (static_cast<unsigned char>(text_[n]) & 0xC0) == 0x80;
         ++back)
        --n;
    release_to(n, false, out);
    return false;
}

void OutputText::flush(Released* out) {
    if (stopped_) return;
    release_to(text_.size(), false, out);
}

}  // namespace gemma::server
