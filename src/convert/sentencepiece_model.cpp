// Protobuf wire-format reader/writer for exactly the parts of sentencepiece's ModelProto we need.
#include "convert/sentencepiece_model.h"

#include <cstring>

#include "core/error.h"
#include "core/mapped_file.h"

namespace gemma {

namespace {

enum Wire : uint32_t { kVarint = 0, kFixed64 = 1, kLen = 2, kStartGroup = 3, kEndGroup = 4, kFixed32 = 5 };

// Bounds-checked cursor over one message; every read names the file and byte offset on failure.
struct Reader {
    const uint8_t* p;
    const uint8_t* end;
    const uint8_t* base;
    const std::string& name;

    [[noreturn]] void fail(const std::string& why) const {
        throw_error(name + ": malformed protobuf at byte " + std::to_string(p - base) + ": " + why);
    }
    bool done() const { return p >= end; }
    uint64_t varint() {
        uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (p >= end) fail("truncated varint");
            const uint8_t b = *p++;
            v |= static_cast<uint64_t>(b & 0x7F) << shift;
            if (!(b & 0x80)) return v;
        }
        fail("varint longer than 10 bytes");
    }
    uint32_t fixed32() {
        if (end - p < 4) fail("truncated fixed32");
        uint32_t v;
        std::memcpy(&v, p, 4);  // protobuf is little-endian, like every host we build for
        p += 4;
        return v;
    }
    Reader sub() {
        const uint64_t n = varint();
        if (n > static_cast<uint64_t>(end - p)) fail("length " + std::to_string(n) + " runs past the end of its message");
        Reader r{p, p + n, base, name};
        p += n;
        return r;
    }
    void skip(uint32_t wire) {
        switch (wire) {
            case kVarint: varint(); break;
            case kFixed64: if (end - p < 8) fail("truncated fixed64"); p += 8; break;
            case kLen: sub(); break;
            case kFixed32: fixed32(); break;
            default: fail("unsupported wire type " + std::to_string(wire));
        }
    }
};

SpPiece parse_piece(Reader r) {
    SpPiece sp;
    while (!r.done()) {
        const uint64_t key = r.varint();
        const uint32_t field = static_cast<uint32_t>(key >> 3), wire = static_cast<uint32_t>(key & 7);
        if (field == 1) {
            if (wire != kLen) r.fail("SentencePiece.piece is not a string");
            Reader s = r.sub();
            sp.piece.assign(reinterpret_cast<const char*>(s.p), static_cast<size_t>(s.end - s.p));
        } else if (field == 2) {
            if (wire != kFixed32) r.fail("SentencePiece.score is not a float");
            const uint32_t bits = r.fixed32();
            std::memcpy(&sp.score, &bits, 4);
        } else if (field == 3) {
            if (wire != kVarint) r.fail("SentencePiece.type is not an enum");
            const uint64_t t = r.varint();
            if (t < 1 || t > 6) r.fail("SentencePiece.type " + std::to_string(t) + " is unknown");
            sp.type = static_cast<SpType>(t);
        } else {
            r.skip(wire);
        }
    }
    return sp;
}

void put_varint(std::vector<uint8_t>& o, uint64_t v) {
    while (v >= 0x80) {
        o.push_back(static_cast<uint8_t>(v | 0x80));
        v >>= 7;
    }
    o.push_back(static_cast<uint8_t>(v));
}
void put_key(std::vector<uint8_t>& o, uint32_t field, uint32_t wire) { put_varint(o, (field << 3) | wire); }
void put_bytes(std::vector<uint8_t>& o, uint32_t field, const void* p, size_t n) {
    put_key(o, field, kLen);
    put_varint(o, n);
    const auto* b = static_cast<const uint8_t*>(p);
    o.insert(o.end(), b, b + n);
}
void put_varint_field(std::vector<uint8_t>& o, uint32_t field, uint64_t v) {
    put_key(o, field, kVarint);
    put_varint(o, v);
}

}  // namespace

std::vector<SpPiece> parse_sentencepiece_model(const uint8_t* data, size_t size, const std::string& name) {
    Reader r{data, data + size, data, name};
    std::vector<SpPiece> pieces;
    while (!r.done()) {
        const uint64_t key = r.varint();
        const uint32_t field = static_cast<uint32_t>(key >> 3), wire = static_cast<uint32_t>(key & 7);
        if (field == 0) r.fail("field number 0");
        if (field == 1) {
            if (wire != kLen) r.fail("ModelProto.pieces is not a message");
            pieces.push_back(parse_piece(r.sub()));
        } else {
            r.skip(wire);  // trainer_spec, normalizer_spec, self_test_data, denormalizer_spec, extensions
        }
    }
    if (pieces.empty()) throw_error(name + ": no pieces (not a sentencepiece model?)");
    return pieces;
}

std::vector<SpPiece> load_sentencepiece_model(const std::string& path) {
    MappedFile m(path);
    return parse_sentencepiece_model(m.data(), m.size(), path);
}

std::vector<uint8_t> serialize_sentencepiece_model(const std::vector<SpPiece>& pieces) {
    std::vector<uint8_t> out, msg;
    for (const SpPiece& sp : pieces) {
        msg.clear();
        put_bytes(msg, 1, sp.piece.data(), sp.piece.size());
        put_key(msg, 2, kFixed32);
        uint32_t bits;
        std::memcpy(&bits, &sp.score, 4);
        for (int i = 0; i < 4; ++i) msg.push_back(static_cast<uint8_t>(bits >> (8 * i)));
        if (sp.type != SpType::Normal) put_varint_field(msg, 3, static_cast<uint32_t>(sp.type));  // NORMAL is the default
        put_bytes(out, 1, msg.data(), msg.size());
    }
    // TrainerSpec: model_type (3) = BPE, vocab_size (4), byte_fallback (35).
    msg.clear();
    put_varint_field(msg, 3, 2);
    put_varint_field(msg, 4, pieces.size());
    put_varint_field(msg, 35, 1);
    put_bytes(out, 2, msg.data(), msg.size());
    // NormalizerSpec: name (1) "identity", add_dummy_prefix (3) false, remove_extra_whitespaces (4) false.
    msg.clear();
    put_bytes(msg, 1, "identity", 8);
    put_varint_field(msg, 3, 0);
    put_varint_field(msg, 4, 0);
    put_bytes(out, 3, msg.data(), msg.size());
    return out;
}

}  // namespace gemma
