// GGUF metadata values: constructors, type names and a short display form for `gemma info`.
#include <cstdio>
#include <sstream>

#include "gguf/gguf.h"

namespace gemma {

const char* gguf_type_name(GgufType t) {
    switch (t) {
        case GgufType::UINT8: return "u8";
        case GgufType::INT8: return "i8";
        case GgufType::UINT16: return "u16";
        case GgufType::INT16: return "i16";
        case GgufType::UINT32: return "u32";
        case GgufType::INT32: return "i32";
        case GgufType::FLOAT32: return "f32";
        case GgufType::BOOL: return "bool";
        case GgufType::STRING: return "str";
        case GgufType::ARRAY: return "arr";
        case GgufType::UINT64: return "u64";
        case GgufType::INT64: return "i64";
        case GgufType::FLOAT64: return "f64";
    }
    return "?";
}

size_t gguf_scalar_size(GgufType t) {
    switch (t) {
        case GgufType::UINT8: case GgufType::INT8: case GgufType::BOOL: return 1;
        case GgufType::UINT16: case GgufType::INT16: return 2;
        case GgufType::UINT32: case GgufType::INT32: case GgufType::FLOAT32: return 4;
        case GgufType::UINT64: case GgufType::INT64: case GgufType::FLOAT64: return 8;
        case GgufType::STRING: case GgufType::ARRAY: return 0;
    }
    return 0;
}

GgufValue GgufValue::u32(uint32_t v) { GgufValue r; r.type = GgufType::UINT32; r.u64 = v; return r; }
GgufValue GgufValue::i32(int32_t v) { GgufValue r; r.type = GgufType::INT32; r.i64 = v; return r; }
GgufValue GgufValue::u64v(uint64_t v) { GgufValue r; r.type = GgufType::UINT64; r.u64 = v; return r; }
GgufValue GgufValue::f32(float v) { GgufValue r; r.type = GgufType::FLOAT32; r.f64 = v; return r; }
GgufValue GgufValue::boolean(bool v) { GgufValue r; r.type = GgufType::BOOL; r.u64 = v; return r; }
GgufValue GgufValue::string(std::string v) { GgufValue r; r.type = GgufType::STRING; r.str = std::move(v); return r; }

GgufValue GgufValue::string_array(std::vector<std::string> v) {
    GgufValue r;
    r.type = GgufType::ARRAY;
    r.elem_type = GgufType::STRING;
    r.count = v.size();
    r.strs = std::move(v);
    return r;
}

template <typename T>
static GgufValue numeric_array(GgufType et, const std::vector<T>& v) {
    GgufValue r;
    r.type = GgufType::ARRAY;
    r.elem_type = et;
    r.count = v.size();
    r.raw.resize(v.size() * sizeof(T));
    if (!v.empty()) std::memcpy(r.raw.data(), v.data(), r.raw.size());
    return r;
}

GgufValue GgufValue::f32_array(const std::vector<float>& v) { return numeric_array(GgufType::FLOAT32, v); }
GgufValue GgufValue::i32_array(const std::vector<int32_t>& v) { return numeric_array(GgufType::INT32, v); }

bool GgufValue::is_integer() const {
    switch (type) {
        case GgufType::UINT8: case GgufType::INT8: case GgufType::UINT16: case GgufType::INT16:
        case GgufType::UINT32: case GgufType::INT32: case GgufType::UINT64: case GgufType::INT64: return true;
        default: return false;
    }
}

static std::string quote(const std::string& s, size_t max_len = 60) {
    std::string out = "\"";
    for (size_t i = 0; i < s.size() && i < max_len; ++i) {
        const unsigned char ch = static_cast<unsigned char>(s[i]);
        if (ch == '\n') out += "\\n";
        else if (ch == '"') out += "\\\"";
        else if (ch < 0x20) { char b[8]; std::snprintf(b, sizeof b, "\\x%02x", ch); out += b; }
        else out += static_cast<char>(ch);
    }
    if (s.size() > max_len) out += "...";
    return out + "\"";
}

static std::string scalar_at(const GgufValue& v, uint64_t i) {
    std::ostringstream os;
    switch (v.elem_type) {
        case GgufType::UINT8: os << unsigned(v.elem<uint8_t>(i)); break;
        case GgufType::INT8: os << int(v.elem<int8_t>(i)); break;
        case GgufType::UINT16: os << v.elem<uint16_t>(i); break;
        case GgufType::INT16: os << v.elem<int16_t>(i); break;
        case GgufType::UINT32: os << v.elem<uint32_t>(i); break;
        case GgufType::INT32: os << v.elem<int32_t>(i); break;
        case GgufType::FLOAT32: os << v.elem<float>(i); break;
        case GgufType::BOOL: os << (v.elem<uint8_t>(i) ? "true" : "false"); break;
        case GgufType::UINT64: os << v.elem<uint64_t>(i); break;
        case GgufType::INT64: os << v.elem<int64_t>(i); break;
        case GgufType::FLOAT64: os << v.elem<double>(i); break;
        default: break;
    }
    return os.str();
}

std::string GgufValue::to_display(size_t max_elems) const {
    std::ostringstream os;
    switch (type) {
        case GgufType::STRING: return quote(str);
        case GgufType::BOOL: return u64 ? "true" : "false";
        case GgufType::FLOAT32: case GgufType::FLOAT64: os << f64; return os.str();
        case GgufType::INT8: case GgufType::INT16: case GgufType::INT32: case GgufType::INT64: return std::to_string(i64);
        case GgufType::ARRAY: {
            os << "[" << gguf_type_name(elem_type) << " x " << count << "] [";
            for (uint64_t i = 0; i < count && i < max_elems; ++i) {
                if (i) os << ", ";
                if (elem_type == GgufType::STRING) os << quote(strs[i], 20);
                else if (elem_type == GgufType::ARRAY) os << arrays[i].to_display(max_elems);
                else os << scalar_at(*this, i);
            }
            if (count > max_elems) os << ", ...";
            os << "]";
            return os.str();
        }
        default: return std::to_string(u64);
    }
}

std::string GgufTensor::shape_string() const {
    std::string s = "[";
    for (uint32_t d = 0; d < n_dims; ++d) s += (d ? ", " : "") + std::to_string(ne[d]);
    return s + "]";
}

bool gguf_values_equal(const GgufValue& a, const GgufValue& b) {
    if (a.type != b.type) return false;
    switch (a.type) {
        case GgufType::STRING: return a.str == b.str;
        case GgufType::FLOAT32: case GgufType::FLOAT64: return a.f64 == b.f64 || (a.f64 != a.f64 && b.f64 != b.f64);
        case GgufType::INT8: case GgufType::INT16: case GgufType::INT32: case GgufType::INT64: return a.i64 == b.i64;
        case GgufType::ARRAY:
            if (a.elem_type != b.elem_type || a.count != b.count || a.raw != b.raw || a.strs != b.strs ||
                a.arrays.size() != b.arrays.size())
                return false;
            for (size_t i = 0; i < a.arrays.size(); ++i)
                if (!gguf_values_equal(a.arrays[i], b.arrays[i])) return false;
            return true;
        default: return a.u64 == b.u64;
    }
}

}  // namespace gemma
