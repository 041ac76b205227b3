// Streaming GGUF writer: header first, then tensor data one tensor at a time, renamed into place when complete.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "gguf/gguf.h"

namespace gemma {
namespace {

uint64_t pad_to(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace

GgufWriter::GgufWriter(std::string path, uint32_t alignment) : path_(std::move(path)), alignment_(alignment) {
    GEMMA_ASSERT(alignment_ > 0 && (alignment_ & (alignment_ - 1)) == 0);
    tmp_path_ = path_ + ".tmp-" + std::to_string(::getpid());
}

GgufWriter::~GgufWriter() {
    if (fp_) std::fclose(fp_);
    if (!finished_ && header_written_ && !resumable_) std::remove(tmp_path_.c_str());
}

void GgufWriter::set_resumable() {
    GEMMA_ASSERT(!header_written_);
    resumable_ = true;
    tmp_path_ = path_ + ".partial";
}

void GgufWriter::set(const std::string& key, GgufValue v) {
    GEMMA_ASSERT(!header_written_);
    for (auto& kv : kvs_)
        if (kv.key == key) { kv.value = std::move(v); return; }
    kvs_.push_back({key, std::move(v)});
}

void GgufWriter::remove(const std::string& key) {
    GEMMA_ASSERT(!header_written_);
    std::erase_if(kvs_, [&](const GgufKv& kv) { return kv.key == key; });
}

void GgufWriter::set_append(const std::string& key, GgufValue v) {
    remove(key);
    kvs_.push_back({key, std::move(v)});
}

void GgufWriter::add_tensor(const std::string& name, TypeId type, std::vector<int64_t> ne) {
    GEMMA_ASSERT(!header_written_);
    if (name.size() > 63) throw_error(path_ + ": tensor name '" + name + "' is longer than 63 bytes");
    for (const auto& i : infos_)
        if (i.name == name) throw_error(path_ + ": duplicate tensor '" + name + "'");
    while (ne.size() > 1 && ne.back() == 1) ne.pop_back();  // as ggml_n_dims: drop trailing unit dims
    GEMMA_ASSERT(!ne.empty() && ne.size() <= 4);
    uint64_t rows = 1;
    for (size_t d = 1; d < ne.size(); ++d) rows *= static_cast<uint64_t>(ne[d]);
    const uint64_t nbytes = row_size(type, ne[0]) * rows;
    const uint64_t offset = infos_.empty() ? 0 : pad_to(infos_.back().offset + infos_.back().nbytes, alignment_);
    infos_.push_back({name, type, std::move(ne), offset, nbytes});
}

void GgufWriter::write_raw(const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, fp_) != n)
        throw_error(tmp_path_ + ": write failed: " + std::strerror(errno));
    if (n && observer_) observer_(p, n);
    pos_ += n;
}

namespace {

template <typename T> void put(std::vector<uint8_t>& b, T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    b.insert(b.end(), p, p + sizeof(T));
}

void put_string(std::vector<uint8_t>& b, const std::string& s) {
    put<uint64_t>(b, s.size());
    b.insert(b.end(), s.begin(), s.end());
}

void put_value(std::vector<uint8_t>& b, const GgufValue& v) {
    switch (v.type) {
        case GgufType::UINT8: put<uint8_t>(b, static_cast<uint8_t>(v.u64)); break;
        case GgufType::INT8: put<int8_t>(b, static_cast<int8_t>(v.i64)); break;
        case GgufType::UINT16: put<uint16_t>(b, static_cast<uint16_t>(v.u64)); break;
        case GgufType::INT16: put<int16_t>(b, static_cast<int16_t>(v.i64)); break;
        case GgufType::UINT32: put<uint32_t>(b, static_cast<uint32_t>(v.u64)); break;
        case GgufType::INT32: put<int32_t>(b, static_cast<int32_t>(v.i64)); break;
        case GgufType::FLOAT32: put<float>(b, static_cast<float>(v.f64)); break;
        case GgufType::BOOL: put<uint8_t>(b, v.u64 ? 1 : 0); break;
        case GgufType::STRING: put_string(b, v.str); break;
        case GgufType::UINT64: put<uint64_t>(b, v.u64); break;
        case GgufType::INT64: put<int64_t>(b, v.i64); break;
        case GgufType::FLOAT64: put<double>(b, v.f64); break;
        case GgufType::ARRAY:
            put<int32_t>(b, static_cast<int32_t>(v.elem_type));
            put<uint64_t>(b, v.count);
            if (v.elem_type == GgufType::STRING) {
                for (const auto& s : v.strs) put_string(b, s);
            } else if (v.elem_type == GgufType::ARRAY) {
                for (const auto& a : v.arrays) put_value(b, a);
            } else {
                b.insert(b.end(), v.raw.begin(), v.raw.end());
            }
            break;
    }
}

}  // namespace

std::vector<uint8_t> GgufWriter::header_bytes() const {
    std::vector<uint8_t> b;
    b.insert(b.end(), {'G', 'G', 'U', 'F'});
    put<uint32_t>(b, 3);
    put<int64_t>(b, static_cast<int64_t>(infos_.size()));
    put<int64_t>(b, static_cast<int64_t>(kvs_.size()));
    for (const auto& kv : kvs_) {
        put_string(b, kv.key);
        put<int32_t>(b, static_cast<int32_t>(kv.value.type));
        put_value(b, kv.value);
    }
    for (const auto& i : infos_) {
        put_string(b, i.name);
        put<uint32_t>(b, static_cast<uint32_t>(i.ne.size()));
        for (int64_t d : i.ne) put<int64_t>(b, d);
        put<int32_t>(b, static_cast<int32_t>(i.type));
        put<uint64_t>(b, i.offset);
    }
    b.resize(pad_to(b.size(), alignment_), 0);
    return b;
}

uint64_t GgufWriter::tensor_start(size_t i) const {
    const uint64_t data = header_bytes().size();
    if (i < infos_.size()) return data + infos_[i].offset;
    return infos_.empty() ? data : data + pad_to(infos_.back().offset + infos_.back().nbytes, alignment_);
}

void GgufWriter::write_header() {
    GEMMA_ASSERT(!header_written_);
    fp_ = std::fopen(tmp_path_.c_str(), "wb");
    if (!fp_) throw_error(path_ + ": cannot create output file: " + std::strerror(errno));
    header_written_ = true;
    std::setvbuf(fp_, nullptr, _IOFBF, 1 << 20);
    const std::vector<uint8_t> b = header_bytes();
    write_raw(b.data(), b.size());
}

uint64_t GgufWriter::checkpoint(size_t* tensors_done) {
    GEMMA_ASSERT(header_written_ && !finished_ && cur_written_ == 0);
    if (std::fflush(fp_) != 0 || ::fsync(::fileno(fp_)) != 0)
        throw_error(tmp_path_ + ": flush failed: " + std::strerror(errno));
    *tensors_done = cur_tensor_;
    return pos_;
}

bool GgufWriter::resume(size_t tensors_done, uint64_t bytes) {
    GEMMA_ASSERT(!header_written_ && resumable_);
    if (tensors_done > infos_.size() || bytes != tensor_start(tensors_done)) return false;
    std::FILE* f = std::fopen(tmp_path_.c_str(), "r+b");
    if (!f) return false;
    // The kept part must start with exactly this writer's header; it is read back once for the observer.
    const std::vector<uint8_t> want = header_bytes();
    std::vector<uint8_t> buf(std::max<size_t>(want.size(), size_t{4} << 20));
    bool ok = std::fread(buf.data(), 1, want.size(), f) == want.size() &&
              std::equal(want.begin(), want.end(), buf.begin());
    if (ok && observer_) observer_(buf.data(), want.size());
    for (uint64_t at = want.size(); ok && at < bytes;) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), bytes - at));
        ok = std::fread(buf.data(), 1, n, f) == n;
        if (ok && observer_) observer_(buf.data(), n);
        at += n;
    }
    if (!ok || std::fflush(f) != 0 || ::ftruncate(::fileno(f), static_cast<off_t>(bytes)) != 0 ||
        std::fseek(f, static_cast<long>(bytes), SEEK_SET) != 0) {
        std::fclose(f);
        if (ok) throw_error(tmp_path_ + ": cannot continue writing: " + std::strerror(errno));
        return false;  // the observer saw bytes: the caller starts over with a fresh writer
    }
    fp_ = f;
    std::setvbuf(fp_, nullptr, _IOFBF, 1 << 20);
    header_written_ = true;
    cur_tensor_ = tensors_done;
    cur_written_ = 0;
    pos_ = bytes;
    return true;
}

void GgufWriter::write_tensor_data(const void* data, size_t bytes) {
    GEMMA_ASSERT(header_written_ && !finished_);
    const auto* p = static_cast<const uint8_t*>(data);
    while (bytes > 0) {
        while (cur_tensor_ < infos_.size() && infos_[cur_tensor_].nbytes == 0) ++cur_tensor_;
        GEMMA_ASSERT(cur_tensor_ < infos_.size());
        const Info& info = infos_[cur_tensor_];
        const uint64_t take = std::min<uint64_t>(bytes, info.nbytes - cur_written_);
        write_raw(p, take);
        p += take;
        bytes -= take;
        cur_written_ += take;
        if (cur_written_ == info.nbytes) {
            static const uint8_t zeros[64] = {};
            const uint64_t padded = pad_to(info.nbytes, alignment_);
            for (uint64_t left = padded - info.nbytes; left > 0;) {
                const uint64_t n = std::min<uint64_t>(left, sizeof zeros);
                write_raw(zeros, n);
                left -= n;
            }
            ++cur_tensor_;
            cur_written_ = 0;
        }
    }
}

void GgufWriter::finish() {
    if (!header_written_) write_header();
    // Zero-size tensors complete without data.
    while (cur_tensor_ < infos_.size() && infos_[cur_tensor_].nbytes == 0) ++cur_tensor_;
    if (cur_tensor_ != infos_.size())
        throw_error(path_ + ": internal: only " + std::to_string(cur_tensor_) + " of " + std::to_string(infos_.size()) +
                    " tensors were written");
    if (std::fflush(fp_) != 0 || ::fsync(::fileno(fp_)) != 0)
        throw_error(tmp_path_ + ": flush failed: " + std::strerror(errno));
    std::fclose(fp_);
    fp_ = nullptr;
    if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0)
        throw_error(path_ + ": cannot rename " + tmp_path_ + " into place: " + std::strerror(errno));
    finished_ = true;
}

}  // namespace gemma
