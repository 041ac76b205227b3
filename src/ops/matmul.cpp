// Matmul op: activation conversion and the row-chunked gemm dispatch over the thread pool.
#include "ops/matmul.h"

#include <algorithm>

#include "core/error.h"
#include "kernels/kernels.h"

namespace gemma::ops {

TypeId act_type(TypeId wt) { return type_traits(wt).vec_dot_type; }

size_t act_bytes(TypeId wt, int64_t n) { return kernels::act_row_size(wt, n); }

void convert_acts(TypeId wt, const float* x, int64_t x_stride, int64_t n, int64_t n_tok, void* dst,
                  ThreadPool& pool) {
    const size_t rb = act_bytes(wt, n);
    auto* d = static_cast<uint8_t*>(dst);
    // Every activation format is block-local (no block is wider than 256), so one wide row can be cut
    // into segments converted in parallel; it pays only for the FFN's down projection in decode.
    constexpr int64_t kSeg = 8192;
    if (n_tok == 1 && n >= 2 * kSeg && pool.size() > 1) {
        pool.parallel_for((n + kSeg - 1) / kSeg, [&](int64_t s, int) {
            const int64_t off = s * kSeg;
            kernels::convert_act_row(wt, x + off, d + act_bytes(wt, off), std::min(kSeg, n - off));
        });
        return;
    }
    if (n_tok == 1) {
        kernels::convert_act_row(wt, x, d, n);
        return;
    }
    pool.parallel_for(n_tok, [&](int64_t t, int) {
        kernels::convert_act_row(wt, x + t * x_stride, d + static_cast<size_t>(t) * rb, n);
    });
}

int64_t chunk_rows(int64_t n_out, size_t row_bytes, int64_t n_tok, int n_threads) {
    // ~128 chunks per matrix keeps two to sixteen threads balanced while the per-chunk overhead
    // (one atomic increment, one kernel call) stays far below the chunk's work; multiples of 16 keep
    // row-interleaved kernels on whole groups.
    int64_t r = (n_out + 127) / 128;
    // A prompt batch's chunk streams every token's activations through the caches once (512 tokens of a 2048-wide
    // input: 1-4 MB, from L3): with 16-row chunks that traffic rivals the arithmetic. Taller chunks, about
    // 256 KiB of weights (which stay in L2 while the kernel's token blocks pass over them), read the activations
    // a few times per matrix instead; at least four chunks per thread keep the threads balanced.
    constexpr int64_t kPromptTokens = 32;
    constexpr size_t kChunkWeightBytes = 256 * 1024;
    if (n_tok >= kPromptTokens && row_bytes > 0) {
        r = std::max<int64_t>(r, static_cast<int64_t>(kChunkWeightBytes / row_bytes));
        r = std::min<int64_t>(r, (n_out + 4 * n_threads - 1) / (4 * std::max(n_threads, 1)));
    }
    r = (r + 15) / 16 * 16;
    return std::clamp<int64_t>(r, 16, 4096);
}

namespace {

struct Job {
    const Matrix* w;
    float* out;
    int64_t out_stride;
    int64_t rows_per_chunk;
    int64_t first_chunk;  // index of this job's first chunk in the combined chunk space
};

// Runs the row chunks of up to kMaxJobs matrices that read the same converted activations.
constexpr size_t kMaxJobs = 8;

void run_jobs(const Job* jobs, size_t n_jobs, int64_t total_chunks, const void* act, size_t act_row_bytes,
              int64_t n_tok, ThreadPool& pool) {
    pool.parallel_for(total_chunks, [&](int64_t c, int) {
        size_t j = 0;
        while (j + 1 < n_jobs && c >= jobs[j + 1].first_chunk) ++j;
        const Job& job = jobs[j];
        const int64_t r0 = (c - job.first_chunk) * job.rows_per_chunk;
        const int64_t r1 = std::min(job.w->n_out, r0 + job.rows_per_chunk);
        const auto gemm = job.w->packed ? kernels::gemm_packed : kernels::gemm;
        gemm(job.w->type, job.w->n_in, job.w->data, job.w->row_bytes, r0, r1, act, act_row_bytes, n_tok, job.out,
             job.out_stride);
    });
}

}  // namespace

void matmul(std::span<const MatmulOut> outs, const float* x, int64_t x_stride, int64_t n_tok, void* act_scratch,
            ThreadPool& pool) {
    GEMMA_ASSERT(outs.size() <= kMaxJobs);
    bool done[kMaxJobs] = {};
    for (size_t i = 0; i < outs.size(); ++i) {
        if (done[i]) continue;
        const TypeId at = act_type(outs[i].w->type);
        const int64_t n_in = outs[i].w->n_in;
        const TypeId wt = outs[i].w->type;
        convert_acts(wt, x, x_stride, n_in, n_tok, act_scratch, pool);
        Job jobs[kMaxJobs];
        size_t n_jobs = 0;
        int64_t total = 0;
        for (size_t k = i; k < outs.size(); ++k) {
            if (done[k] || act_type(outs[k].w->type) != at) continue;
            GEMMA_ASSERT(outs[k].w->n_in == n_in);
            done[k] = true;
            const int64_t rpc = chunk_rows(outs[k].w->n_out, outs[k].w->row_bytes, n_tok, pool.size());
            jobs[n_jobs++] = Job{outs[k].w, outs[k].out, outs[k].out_stride, rpc, total};
            total += (outs[k].w->n_out + rpc - 1) / rpc;
        }
        run_jobs(jobs, n_jobs, total, act_scratch, act_bytes(wt, n_in), n_tok, pool);
    }
}

void matmul(const Matrix& w, const float* x, int64_t x_stride, int64_t n_tok, float* out, int64_t out_stride,
            void* act_scratch, ThreadPool& pool) {
    const MatmulOut o{&w, out, out_stride};
    matmul(std::span<const MatmulOut>(&o, 1), x, x_stride, n_tok, act_scratch, pool);
}

void matmul_converted(const Matrix& w, const void* act, size_t act_row_bytes, int64_t n_tok, float* out,
                      int64_t out_stride, ThreadPool& pool) {
    const int64_t rpc = chunk_rows(w.n_out, w.row_bytes, n_tok, pool.size());
    const Job job{&w, out, out_stride, rpc, 0};
    run_jobs(&job, 1, (w.n_out + rpc - 1) / rpc, act, act_row_bytes, n_tok, pool);
}

}  // namespace gemma::ops
