// SentencePiece-BPE encode/decode as specified in SPEC §8.3-8.4 (priority-queue merges: O(n log n) per fragment).
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>

#include "core/error.h"

namespace gemma {
namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

}  // namespace

size_t utf8_char_len(std::string_view s) {
    if (s.empty()) return 0;
    const auto c = static_cast<unsigned char>(s[0]);
    const size_t need = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
    size_t k = 1;
    // Stop at the first byte that cannot continue the character, so text after a broken sequence
    // still merges normally instead of being swallowed into an unknown symbol.
    while (k < need && k < s.size() && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) ++k;
    return k;
}

size_t utf8_incomplete_tail(std::string_view s) {
    const size_t n = s.size();
    for (size_t back = 1; back <= 4 && back <= n; ++back) {
        const auto c = static_cast<unsigned char>(s[n - back]);
        if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
        const size_t need = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
        return back < need ? back : 0;
    }
    return 0;  // only continuation bytes: malformed, nothing can complete it
}

std::string escape_for_display(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        const size_t len = utf8_char_len(s.substr(i));
        const bool whole = c >= 0x80 && len > 1 && len == (c >= 0xF0 ? 4u : c >= 0xE0 ? 3u : 2u);
        if (whole) {
            out.append(s.substr(i, len));
            i += len;
            continue;
        }
        switch (c) {
            case '\n': out += "\\n"; break;
            case '\t': out += "\\t"; break;
            case '\r': out += "\\r"; break;
            case '\\': out += "\\\\"; break;
            case '\'': out += "\\'"; break;
            default:
                if (c < 0x20 || c >= 0x7F) {
                    char hex[8];
                    std::snprintf(hex, sizeof hex, "\\x%02X", c);
                    out += hex;
                } else {
                    out += static_cast<char>(c);
                }
        }
        ++i;
    }
    return out;
}

// Scratch buffers reused across the fragments of one encode() call.
struct Tokenizer::Workspace {
    struct Sym {
        int prev, next;
        uint32_t off, len;
    };
    struct Bigram {
        float score;
        int left, right;
        uint32_t len;
    };
    // Max-heap order: higher score first; on ties the leftmost pair (SentencePiece and llama.cpp agree).
    struct Lower {
        bool operator()(const Bigram& a, const Bigram& b) const {
            return a.score < b.score || (a.score == b.score && a.left > b.left);
        }
    };
    std::string text;
    std::vector<Sym> syms;
    std::vector<Bigram> heap;
};

Tokenizer::Tokenizer(Vocab vocab) : vocab_(std::move(vocab)) {
    // Build with per-node maps, then flatten to contiguous edge lists (node ids stay the same).
    std::vector<std::map<uint8_t, uint32_t>> kids(1);
    std::vector<TokenId> tokens(1, kNoToken);
    for (TokenId id : vocab_.special_tokens()) {
        uint32_t node = 0;
        for (char ch : vocab_.text(id)) {
            const auto c = static_cast<uint8_t>(ch);
            auto it = kids[node].find(c);
            if (it == kids[node].end()) {
                it = kids[node].emplace(c, static_cast<uint32_t>(kids.size())).first;
                kids.emplace_back();
                tokens.push_back(kNoToken);
            }
            node = it->second;
        }
        if (tokens[node] == kNoToken) tokens[node] = id;
    }
    trie_.resize(kids.size());
    root_next_.assign(256, 0);
    for (size_t n = 0; n < kids.size(); ++n) {
        trie_[n].token = tokens[n];
        trie_[n].first_edge = static_cast<uint32_t>(edges_.size());
        trie_[n].n_edges = static_cast<uint32_t>(kids[n].size());
        for (const auto& [c, child] : kids[n]) edges_.push_back(TrieEdge{c, child});
    }
    for (const auto& [c, child] : kids[0]) root_next_[c] = child;
}

TokenId Tokenizer::match_special(std::string_view text, size_t pos, bool parse_special, size_t* len) const {
    uint32_t node = root_next_[static_cast<uint8_t>(text[pos])];
    if (node == 0) return kNoToken;  // most bytes cannot start a special token
    TokenId best = kNoToken;
    for (size_t k = pos + 1;; ++k) {
        const TokenId t = trie_[node].token;
        // SentencePiece never produces the unknown token from text: "<unk>" is spelled out.
        if (t != kNoToken && vocab_.type(t) != TokenType::Unknown && (parse_special || !vocab_.is_control(t))) {
            best = t;
            *len = k - pos;
        }
        if (k == text.size()) break;
        const TrieNode& nd = trie_[node];
        const auto c = static_cast<uint8_t>(text[k]);
        uint32_t next = 0;
        for (uint32_t e = nd.first_edge; e < nd.first_edge + nd.n_edges; ++e)
            if (edges_[e].byte == c) { next = edges_[e].child; break; }
        if (next == 0) break;
        node = next;
    }
    return best;
}

std::vector<TokenId> Tokenizer::encode(std::string_view input, bool add_special, bool parse_special) const {
    std::vector<TokenId> out;
    out.reserve(input.size() / 3 + 2);
    if (add_special && vocab_.add_bos() && vocab_.bos() != kNoToken) out.push_back(vocab_.bos());

    // A literal U+2581 means a space to SentencePiece, so it must also reach the space-run tokens.
    std::string normalized;
    std::string_view text = input;
    if (input.find(kSpaceMark) != std::string_view::npos) {
        normalized.reserve(input.size());
        for (size_t i = 0; i < input.size();) {
            if (input.compare(i, kSpaceMark.size(), kSpaceMark) == 0) {
                normalized += ' ';
                i += kSpaceMark.size();
            } else {
                normalized += input[i++];
            }
        }
        text = normalized;
    }

    // Special tokens are cut out leftmost-longest in one pass (SentencePiece's prefix matcher). For the
    // Gemma vocabulary this is the same partition as llama.cpp's longest-token-first passes, since no
    // special token text overlaps another except by containment, and it is linear in the text.
    Workspace ws;
    bool prev_special = true;  // a space prefix (when the vocab wants one) goes before text that starts a run
    size_t start = 0;
    for (size_t i = 0; i < text.size();) {
        size_t len = 0;
        const TokenId id = match_special(text, i, parse_special, &len);
        if (id == kNoToken) {
            ++i;
            continue;
        }
        if (i > start) encode_fragment(text.substr(start, i - start), prev_special, ws, &out);
        out.push_back(id);
        prev_special = true;
        i += len;
        start = i;
    }
    if (start < text.size()) encode_fragment(text.substr(start), prev_special, ws, &out);

    if (add_special && vocab_.add_eos() && vocab_.eos() != kNoToken) out.push_back(vocab_.eos());
    return out;
}

void Tokenizer::encode_fragment(std::string_view frag, bool space_prefix, Workspace& ws,
                                std::vector<TokenId>* out) const {
    using Sym = Workspace::Sym;
    using Bigram = Workspace::Bigram;
    std::string& s = ws.text;
    s.clear();
    if (space_prefix && vocab_.add_space_prefix()) s += kSpaceMark;
    for (char c : frag) {
        if (c == ' ') s += kSpaceMark;
        else s += c;
    }

    auto& syms = ws.syms;
    syms.clear();
    for (size_t off = 0; off < s.size();) {
        const size_t len = utf8_char_len(std::string_view(s).substr(off));
        const int idx = static_cast<int>(syms.size());
        syms.push_back(Sym{idx - 1, idx + 1, static_cast<uint32_t>(off), static_cast<uint32_t>(len)});
        off += len;
    }
    if (syms.empty()) return;
    syms.back().next = -1;

    auto& heap = ws.heap;
    heap.clear();
    const Workspace::Lower lower;
    auto try_add = [&](int left, int right) {
        if (left < 0 || right < 0) return;
        // Symbols stay contiguous in `s` (a merge always absorbs the right neighbour), so the pair's
        // text is one substring.
        const uint32_t len = syms[left].len + syms[right].len;
        const TokenId id = vocab_.find_piece(std::string_view(s).substr(syms[left].off, len));
        if (id == kNoToken) return;
        heap.push_back(Bigram{vocab_.score(id), left, right, len});
        std::push_heap(heap.begin(), heap.end(), lower);
    };
    // Initial pairs in batches: hash and prefetch a batch, then probe it, so the table's cache misses overlap.
    const int n_sym = static_cast<int>(syms.size());
    constexpr int kBatch = 32;
    uint64_t hashes[kBatch];
    for (int base = 0; base + 1 < n_sym; base += kBatch) {
        const int cnt = std::min(kBatch, n_sym - 1 - base);
        for (int k = 0; k < cnt; ++k) {
            const Sym& a = syms[base + k];
            hashes[k] = gemma::Vocab::hash(std::string_view(s).substr(a.off, a.len + syms[base + k + 1].len));
            vocab_.prefetch(hashes[k]);
        }
        for (int k = 0; k < cnt; ++k) {
            const Sym& a = syms[base + k];
            const uint32_t len = a.len + syms[base + k + 1].len;
            const TokenId id = vocab_.find_piece_hashed(std::string_view(s).substr(a.off, len), hashes[k]);
            if (id == kNoToken) continue;
            heap.push_back(Bigram{vocab_.score(id), base + k, base + k + 1, len});
        }
    }
    std::make_heap(heap.begin(), heap.end(), lower);

    while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), lower);
        const Bigram b = heap.back();
        heap.pop_back();
        Sym& l = syms[b.left];
        Sym& r = syms[b.right];
        // Stale entry: one side was merged away or grew since the pair was queued.
        if (l.len == 0 || r.len == 0 || l.len + r.len != b.len) continue;
        l.len += r.len;
        r.len = 0;
        l.next = r.next;
        if (r.next >= 0) syms[r.next].prev = b.left;
        try_add(l.prev, b.left);
        try_add(b.left, l.next);
    }

    // Every merged symbol is a vocabulary piece by construction; only single characters can be missing,
    // and those fall back to one byte token per byte.
    for (int i = 0; i >= 0; i = syms[i].next) {
        const Sym& sym = syms[i];
        const std::string_view piece = std::string_view(s).substr(sym.off, sym.len);
        const TokenId id = vocab_.find_piece(piece);
        if (id != kNoToken) {
            out->push_back(id);
            continue;
        }
        for (unsigned char c : piece) {
            const TokenId bt = vocab_.byte_token(c);
            if (bt == kNoToken) {
                char hex[8];
                std::snprintf(hex, sizeof hex, "0x%02X", c);
                throw_error(vocab_.name() + ": cannot encode byte " + hex +
                            ": the vocabulary has neither a byte token for it nor an unknown token");
            }
            out->push_back(bt);
        }
    }
}

void Tokenizer::append_piece(TokenId id, bool special, std::string* out) const {
    if (!vocab_.valid(id))
        throw_error("token id " + std::to_string(id) + " is outside the vocabulary (size " +
                    std::to_string(vocab_.size()) + ")");
    const TokenType t = vocab_.type(id);
    if (vocab_.is_control(id) || t == TokenType::Unknown) {
        if (special) *out += vocab_.text(id);
        return;
    }
    switch (t) {
        case TokenType::Normal: {
            const std::string& txt = vocab_.text(id);
            for (size_t i = 0; i < txt.size();) {
                if (txt.compare(i, kSpaceMark.size(), kSpaceMark) == 0) {
                    *out += ' ';
                    i += kSpaceMark.size();
                } else {
                    *out += txt[i++];
                }
            }
            return;
        }
        case TokenType::Byte: {
            const int b = vocab_.token_byte(id);
            if (b >= 0) *out += static_cast<char>(b);
            return;
        }
        case TokenType::UserDefined: *out += vocab_.text(id); return;
        default: return;  // UNUSED / UNDEFINED render as nothing, like llama.cpp
    }
}

std::string Tokenizer::token_to_piece(TokenId id, bool special) const {
    std::string s;
    append_piece(id, special, &s);
    return s;
}

std::string Tokenizer::decode(std::span<const TokenId> ids, bool special, bool remove_special) const {
    if (remove_special) {
        if (vocab_.add_bos() && !ids.empty() && ids.front() == vocab_.bos()) ids = ids.subspan(1);
        if (vocab_.add_eos() && !ids.empty() && ids.back() == vocab_.eos()) ids = ids.first(ids.size() - 1);
    }
    std::string out;
    for (TokenId id : ids) append_piece(id, special, &out);
    // Undo the space the encoder put in front of the text (never for Gemma: add_space_prefix is false).
    if (vocab_.add_space_prefix() && !out.empty() && out[0] == ' ') out.erase(0, 1);
    return out;
}

std::string StreamDecoder::push(TokenId id) {
    tok_->append_piece(id, special_, &pending_);
    const size_t hold = utf8_incomplete_tail(pending_);
    std::string ready = pending_.substr(0, pending_.size() - hold);
    pending_.erase(0, pending_.size() - hold);
    return ready;
}

std::string StreamDecoder::flush() {
    std::string rest;
    rest.swap(pending_);
    return rest;
}

}  // namespace gemma
