// Matmul over quantized weights: activations converted once to the paired type, rows split into fixed chunks.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>

#include "ops/thread_pool.h"
#include "quant/types.h"

namespace gemma::ops {

// A weight matrix used in place (for example inside the GGUF mapping): n_out rows of n_in elements.
struct Matrix {
    TypeId type = TypeId::F32;
    int64_t n_in = 0;            // ne0: elements per row (the input width)
    int64_t n_out = 0;           // ne1: rows (the output width)
    const uint8_t* data = nullptr;
    size_t row_bytes = 0;        // row_size(type, n_in)
    bool packed = false;         // rows interleaved in groups of kernels::kPackRows (n_out a multiple of it)
};

// The activation type llama.cpp pairs with weight type wt (its vec_dot_type).
TypeId act_type(TypeId wt);
// Bytes one converted activation row of n elements takes for weights of type wt.
size_t act_bytes(TypeId wt, int64_t n);

// x: n_tok rows of n floats, x_stride floats apart -> dst: n_tok rows, act_bytes(wt, n) apart.
// Parallel over rows when there are several.
void convert_acts(TypeId wt, const float* x, int64_t x_stride, int64_t n, int64_t n_tok, void* dst,
                  ThreadPool& pool);

// One output of a multi-matmul: out[t * out_stride + r] = W_r · x_t.
struct MatmulOut {
    const Matrix* w = nullptr;
    float* out = nullptr;
    int64_t out_stride = 0;
};

// Rows per chunk of a matrix of n_out rows of row_bytes each, for n_tok tokens on n_threads threads. A multiple
// of 16, so chunks of packed matrices hold whole groups. How rows are split never changes a result (every kernel
// computes a row the same way in any chunk: tests check it), only how often activations are re-read.
int64_t chunk_rows(int64_t n_out, size_t row_bytes, int64_t n_tok, int n_threads);

// Several matrices reading the same input (q/k/v, gate/up): the input is converted once per distinct
// activation type into `act_scratch` (at least n_tok * act_bytes(w, n_in) bytes for every w) and the
// row chunks of all matrices sharing it run in one parallel_for. All matrices must share n_in.
void matmul(std::span<const MatmulOut> outs, const float* x, int64_t x_stride, int64_t n_tok,
            void* act_scratch, ThreadPool& pool);

// Single-matrix convenience form.
void matmul(const Matrix& w, const float* x, int64_t x_stride, int64_t n_tok, float* out, int64_t out_stride,
            void* act_scratch, ThreadPool& pool);

// Matmul with activations already converted for w's type (act rows act_row_bytes apart).
void matmul_converted(const Matrix& w, const void* act, size_t act_row_bytes, int64_t n_tok, float* out,
                      int64_t out_stride, ThreadPool& pool);

}  // namespace gemma::ops
