// One pass over a source GGUF that writes any number of quantized files: every distinct (tensor, type,
// weights) quantization runs once, row batch by row batch, and its bytes go to every file that holds it.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "quant/quantize_plan.h"

namespace gemma {

struct QuantOutput {
    std::string path;
    const QuantPlan* plan = nullptr;  // over the same source as every other output
    bool hash = false;                // SHA-256 of the file, computed from the bytes as they are written
    // Resumable: written through "<path>.partial", which survives an interruption; checkpoints (below)
    // make its first tensors durable, and a later run continues from the last one.
    bool resumable = false;
    size_t resume_tensors = 0;        // > 0: continue the temporary from this checkpoint
    uint64_t resume_bytes = 0;
};

// One quantization of one source tensor, shared by the outputs that hold the same result.
struct QuantJob {
    size_t tensor = 0;                            // index into the plans' tensor order
    TypeId type = TypeId::F32;
    const std::vector<float>* weights = nullptr;  // null: none (or a quantizer that ignores them)
    std::vector<size_t> outputs;
};

struct JobTable {
    std::vector<QuantJob> jobs;        // by tensor, in tensor order
    std::vector<size_t> tensor_begin;  // jobs of tensor i: [tensor_begin[i], tensor_begin[i + 1])
    size_t planned = 0;                // quantized tensors summed over the outputs (what separate runs would do)
};
// The distinct jobs of `plans`, which must all be plans of the same source. Two outputs share a job when
// they want the same type for a tensor with the same importance weights; weights do not count for the
// types whose quantizers ignore them (Q8_0, the float types). Output o takes part from tensor start[o]
// (empty: from the first).
JobTable plan_jobs(const std::vector<const QuantPlan*>& plans, const std::vector<size_t>& start = {});

// Nanoseconds per element a quantizer takes, as measured on one core (IQ types cost a hundred times
// Q4_0): the relative weights that make an ETA right before every type has been timed.
double estimated_ns_per_element(TypeId t, bool weighted);

// The work of a job table at the reference speeds, for plans and dry runs.
struct WorkEstimate {
    struct Kind {
        TypeId type;
        bool weighted;
        double elements = 0, seconds = 0;  // of the distinct jobs
    };
    std::vector<Kind> kinds;       // by estimated time, largest first
    double seconds = 0;            // one pass: the distinct jobs, reading the source once
    double seconds_separate = 0;   // one run per plan: every planned quantization, the source read per run
};
WorkEstimate estimate_work(const std::vector<const QuantPlan*>& plans, const JobTable& t);

struct QuantProgress {
    size_t tensor = 0, n_tensors = 0;  // the tensor being worked on (from 0)
    std::string tensor_name;
    std::vector<TypeId> types;         // what it is being quantized to
    size_t jobs_done = 0, jobs_total = 0;
    uint64_t bytes_written = 0;        // over all outputs
    double elapsed_s = 0;
    double fraction = 0;               // of the estimated work
    double eta_s = -1;                 // estimated seconds left; < 0 until something has been timed
};

struct QuantFilesOptions {
    int threads = 0;                                        // <= 0: all hardware threads
    std::function<void(size_t tensor)> before_tensor;       // e.g. `gemma quantize`'s per-tensor lines
    std::function<void(const QuantProgress&)> on_progress;  // after every row batch
    // Between tensors, at most this often: fsync every resumable output, then report (tensors done,
    // bytes) per output (0, 0 for the others) so the caller can record where a later run may resume.
    double checkpoint_seconds = 60;
    std::function<void(const std::vector<std::pair<size_t, uint64_t>>&)> on_checkpoint;
};

struct QuantFilesResult {
    size_t jobs_run = 0, jobs_planned = 0;
    size_t resumed = 0;                // outputs continued from a checkpoint
    std::vector<uint64_t> sizes;       // per output
    std::vector<std::string> sha256;   // per output (empty where not asked)
    uint64_t bytes_read = 0;           // source tensor bytes
    uint64_t bytes_written = 0;        // tensor bytes over all outputs
    double seconds = 0;
};

// Writes every output (through a temporary renamed when complete). Memory is bounded by one row batch
// per job whatever the model size, and the source's pages are dropped once a tensor is done. The outputs
// are exactly what writing each plan alone gives: rows are independent, so neither the batching nor the
// thread count changes a byte. Throws gemma::Error when a type cannot be read or written.
QuantFilesResult quantize_files(const std::vector<QuantOutput>& outs, const QuantFilesOptions& o);

}  // namespace gemma
