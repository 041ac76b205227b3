// Quantizes a GGUF the way llama-quantize does (same tensor order, keys and per-tensor types), in bounded memory:
// one plan carried out by the shared quantization pass.
#include "quant/quantize_model.h"

#include <chrono>
#include <cstdio>

#include "gguf/gguf.h"
#include "quant/quantize_files.h"
#include "quant/quantize_plan.h"

namespace gemma {

QuantizeStats quantize_model(const QuantizeOptions& opt) {
    const auto t_start = std::chrono::steady_clock::now();
    auto in = GgufFile::open(opt.input);
    ImportanceWeights weights;
    if (!opt.imatrix_path.empty()) weights = ImportanceWeights(load_imatrix(opt.imatrix_path), opt.imatrix_path);
    // Every type is decided before anything is written, so bad input fails before an output file exists.
    const QuantPlan plan = plan_quantization(*in, opt.ftype, weights, {opt.input, opt.imatrix_path, opt.allow_requantize});

    QuantFilesOptions qo;
    qo.threads = opt.threads;
    if (!opt.quiet)
        qo.before_tensor = [&](size_t i) {
            const GgufTensor& t = *plan.tensors[i].src;
            const TypeId nt = plan.tensors[i].type;
            const uint64_t out_bytes = row_size(nt, t.ne[0]) * static_cast<uint64_t>(t.n_rows());
            std::fprintf(stderr, "[%4zu/%4zu] %-32s %-22s %6s -> %-7s %9.2f MiB -> %9.2f MiB\n", i + 1, plan.tensors.size(),
                         t.name.c_str(), t.shape_string().c_str(), type_name(t.type), type_name(nt),
                         static_cast<double>(t.nbytes) / 1048576.0, static_cast<double>(out_bytes) / 1048576.0);
        };
    const QuantFilesResult r = quantize_files({{opt.output, &plan, false}}, qo);
    QuantizeStats st;
    st.n_tensors = static_cast<int>(plan.tensors.size());
    st.input_bytes = r.bytes_read;
    st.output_bytes = r.bytes_written;
    st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    return st;
}

}  // namespace gemma
