// libFuzzer target for the GGUF parser: any input must parse or raise gemma::Error, never crash or over-read.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "gguf/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // Copy into an exactly-sized heap buffer so ASan catches any read past the end.
    std::vector<uint8_t> buf(data, data + size);
    try {
        auto f = gemma::GgufFile::from_memory(buf.data(), buf.size(), "fuzz.gguf");
        volatile uint64_t sink = 0;
        for (const auto& t : f->tensors())
            if (t.nbytes) sink = sink + t.data[0] + t.data[t.nbytes - 1];
        for (const auto& kv : f->kvs()) sink = sink + kv.value.to_display().size();
    } catch (const gemma::Error&) {
    }
    return 0;
}
