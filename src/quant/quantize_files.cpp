// The shared quantization pass: jobs deduplicated across outputs, row batches split over threads, every
// output written (and hashed) in lockstep, an ETA from per-type timings.
#include "quant/quantize_files.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <thread>
#include <tuple>

#include "core/error.h"
#include "core/mapped_file.h"
#include "core/sha256.h"

namespace gemma {
namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

bool ignores_weights(TypeId t) {
    return t == TypeId::Q8_0 || t == TypeId::F32 || t == TypeId::F16 || t == TypeId::BF16;
}

// Rows per batch: about 16 MiB of f32 whatever the tensor size, never zero.
int64_t batch_rows(int64_t ne0) { return std::max<int64_t>(1, (int64_t{4} << 20) / std::max<int64_t>(ne0, 1)); }

// Time per element of each kind of work seen so far, and how much of each is left. Kinds are
// (type, weighted) plus one for reading the source; kinds not timed yet borrow the static table,
// scaled by how fast this machine ran the kinds that were.
class Eta {
public:
    size_t kind(TypeId t, bool weighted) {
        const auto key = std::make_pair(static_cast<int>(t), weighted);
        auto it = index_.find(key);
        if (it != index_.end()) return it->second;
        kinds_.push_back({estimated_ns_per_element(t, weighted) * 1e-9});
        return index_[key] = kinds_.size() - 1;
    }
    void plan(size_t k, double elements) { kinds_[k].planned += elements; }
    void done(size_t k, double elements, double seconds) {
        kinds_[k].done += elements;
        kinds_[k].spent += seconds;
    }
    // Thread-seconds still to spend, and spent so far.
    std::pair<double, double> remaining_and_spent() const {
        double measured = 0, predicted = 0, spent = 0;
        for (const Kind& k : kinds_) {
            spent += k.spent;
            if (k.done > 0) {
                measured += k.spent;
                predicted += k.done * k.static_s;
            }
        }
        const double scale = predicted > 0 ? measured / predicted : 1;
        double left = 0;
        for (const Kind& k : kinds_) {
            const double rate = k.done > 0 ? k.spent / k.done : k.static_s * scale;
            left += std::max(0.0, k.planned - k.done) * rate;
        }
        return {left, spent};
    }

private:
    struct Kind {
        double static_s;  // seconds per element from the table
        double planned = 0, done = 0, spent = 0;
    };
    std::vector<Kind> kinds_;
    std::map<std::pair<int, bool>, size_t> index_;
};

// Runs fn(thread) on n threads (the caller is thread 0) and rethrows the first exception.
void run_threads(int n, const std::function<void(int)>& fn) {
    std::exception_ptr err;
    std::atomic<bool> failed{false};
    auto guarded = [&](int ti) {
        try {
            fn(ti);
        } catch (...) {
            if (!failed.exchange(true)) err = std::current_exception();
        }
    };
    std::vector<std::thread> pool;
    for (int ti = 1; ti < n; ++ti) pool.emplace_back(guarded, ti);
    guarded(0);
    for (auto& th : pool) th.join();
    if (err) std::rethrow_exception(err);
}

}  // namespace

double estimated_ns_per_element(TypeId t, bool weighted) {
    // Measured with the reference quantizers on rows of 2048 (one core of a 2-core EPYC VM; the batched
    // (scale, min) searches scaled from gemma_microbench --benchmark_filter=quantize/ by the unchanged types).
    switch (t) {
        case TypeId::F32: return 1;
        case TypeId::F16: return 4;
        case TypeId::BF16: return 2.3;
        case TypeId::Q8_0: return 11;
        case TypeId::Q4_0: return weighted ? 119 : 5.5;
        case TypeId::Q4_1: return weighted ? 57 : 4.9;
        case TypeId::Q5_0: return weighted ? 115 : 6;
        case TypeId::Q5_1: return weighted ? 56 : 5.2;
        case TypeId::Q2_K: return weighted ? 76 : 36;
        case TypeId::Q3_K: return weighted ? 156 : 42;
        case TypeId::Q4_K: return weighted ? 60 : 37;
        case TypeId::Q5_K: return weighted ? 72 : 42;
        case TypeId::Q6_K: return weighted ? 128 : 123;
        case TypeId::IQ4_NL: return weighted ? 198 : 216;
        case TypeId::IQ4_XS: return weighted ? 297 : 194;
        case TypeId::IQ3_S: return weighted ? 641 : 685;
        case TypeId::IQ3_XXS: return weighted ? 1000 : 1027;
        default: return 1000;  // IQ2/IQ1: the slowest searches
    }
}

JobTable plan_jobs(const std::vector<const QuantPlan*>& plans, const std::vector<size_t>& start) {
    JobTable t;
    if (plans.empty()) return t;
    const size_t n_tensors = plans[0]->tensors.size();
    for (const QuantPlan* p : plans) {
        GEMMA_ASSERT(p->tensors.size() == n_tensors);
        for (size_t i = 0; i < n_tensors; ++i) GEMMA_ASSERT(p->tensors[i].src == plans[0]->tensors[i].src);
    }
    for (size_t i = 0; i < n_tensors; ++i) {
        t.tensor_begin.push_back(t.jobs.size());
        std::map<std::pair<int, const std::vector<float>*>, size_t> seen;
        for (size_t o = 0; o < plans.size(); ++o) {
            const PlannedTensor& pt = plans[o]->tensors[i];
            if (pt.copied() || (!start.empty() && i < start[o])) continue;
            ++t.planned;
            const std::vector<float>* w = ignores_weights(pt.type) ? nullptr : pt.weights;
            const auto key = std::make_pair(static_cast<int>(pt.type), w);
            auto it = seen.find(key);
            if (it == seen.end()) {
                it = seen.emplace(key, t.jobs.size()).first;
                t.jobs.push_back({i, pt.type, w, {}});
            }
            t.jobs[it->second].outputs.push_back(o);
        }
    }
    t.tensor_begin.push_back(t.jobs.size());
    return t;
}

WorkEstimate estimate_work(const std::vector<const QuantPlan*>& plans, const JobTable& t) {
    WorkEstimate w;
    if (plans.empty()) return w;
    const double read_ns = estimated_ns_per_element(TypeId::F32, false);
    std::map<std::pair<int, bool>, WorkEstimate::Kind> kinds;
    for (const QuantJob& j : t.jobs) {
        const double n = static_cast<double>(plans[0]->tensors[j.tensor].src->n_elements());
        auto& k = kinds[{static_cast<int>(j.type), j.weights != nullptr}];
        k.type = j.type;
        k.weighted = j.weights != nullptr;
        k.elements += n;
        k.seconds += n * estimated_ns_per_element(j.type, j.weights != nullptr) * 1e-9;
    }
    for (size_t i = 0; i + 1 < t.tensor_begin.size(); ++i)
        if (t.tensor_begin[i + 1] > t.tensor_begin[i])
            w.seconds += static_cast<double>(plans[0]->tensors[i].src->n_elements()) * read_ns * 1e-9;
    for (const auto& [key, k] : kinds) {
        w.kinds.push_back(k);
        w.seconds += k.seconds;
    }
    std::sort(w.kinds.begin(), w.kinds.end(), [](const auto& a, const auto& b) { return a.seconds > b.seconds; });
    for (const QuantPlan* p : plans)
        for (const PlannedTensor& pt : p->tensors) {
            if (pt.copied()) continue;
            const double n = static_cast<double>(pt.src->n_elements());
            w.seconds_separate += n * (read_ns + estimated_ns_per_element(pt.type, pt.weights != nullptr)) * 1e-9;
        }
    return w;
}

QuantFilesResult quantize_files(const std::vector<QuantOutput>& outs, const QuantFilesOptions& o) {
    const auto t_start = Clock::now();
    std::vector<const QuantPlan*> plans;
    std::vector<size_t> start;
    for (const QuantOutput& out : outs) {
        plans.push_back(out.plan);
        start.push_back(out.resumable ? out.resume_tensors : 0);
    }
    // Writers first: an output whose temporary cannot be continued starts over, from tensor 0.
    std::vector<std::unique_ptr<GgufWriter>> writers;
    std::vector<Sha256> hashers(outs.size());
    size_t resumed = 0;
    for (size_t f = 0; f < outs.size(); ++f) {
        auto w = std::make_unique<GgufWriter>(outs[f].path, outs[f].plan->alignment);
        for (const GgufKv& kv : outs[f].plan->kvs) w->set(kv.key, kv.value);
        for (const PlannedTensor& pt : outs[f].plan->tensors)
            w->add_tensor(pt.src->name, pt.type, std::vector<int64_t>(pt.src->ne, pt.src->ne + pt.src->n_dims));
        if (outs[f].hash) w->set_observer([h = &hashers[f]](const void* p, size_t n) { h->update(p, n); });
        if (outs[f].resumable) w->set_resumable();
        writers.push_back(std::move(w));
        if (start[f] > 0 && writers[f]->resume(start[f], outs[f].resume_bytes)) {
            ++resumed;
        } else {
            start[f] = 0;
            hashers[f].reset();
        }
    }
    const JobTable table = plan_jobs(plans, start);
    QuantFilesResult res;
    res.resumed = resumed;
    res.jobs_run = table.jobs.size();
    res.jobs_planned = table.planned;
    res.sizes.assign(outs.size(), 0);
    res.sha256.assign(outs.size(), "");
    if (outs.empty()) return res;
    const std::vector<PlannedTensor>& order = plans[0]->tensors;

    // Types are checked before any file is created.
    for (const QuantJob& j : table.jobs) {
        const GgufTensor& t = *order[j.tensor].src;
        if (!type_traits(t.type).dequantize_row) throw_error("tensor '" + t.name + "': cannot read type " + type_name(t.type));
        if (!type_traits(j.type).quantize_rows) throw_error("tensor '" + t.name + "': cannot write type " + type_name(j.type));
    }

    Eta eta;
    const size_t read_kind = eta.kind(TypeId::F32, false);  // dequantizing source rows to f32
    std::vector<size_t> job_kind(table.jobs.size());
    for (size_t i = 0; i < order.size(); ++i) {
        const double n = static_cast<double>(order[i].src->n_elements());
        if (table.tensor_begin[i + 1] > table.tensor_begin[i]) eta.plan(read_kind, n);
        for (size_t j = table.tensor_begin[i]; j < table.tensor_begin[i + 1]; ++j) {
            job_kind[j] = eta.kind(table.jobs[j].type, table.jobs[j].weights != nullptr);
            eta.plan(job_kind[j], n);
        }
    }

    for (size_t f = 0; f < outs.size(); ++f)
        if (start[f] == 0) writers[f]->write_header();
    auto last_checkpoint = Clock::now();

    const int n_threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    std::vector<float> f32;
    std::vector<std::vector<uint8_t>> buf;
    size_t jobs_done = 0;
    for (size_t i = 0; i < order.size(); ++i) {
        std::vector<size_t> active;  // the outputs that still need tensor i
        for (size_t f = 0; f < outs.size(); ++f)
            if (start[f] <= i) active.push_back(f);
        if (active.empty()) continue;
        if (o.before_tensor) o.before_tensor(i);
        const GgufTensor& t = *order[i].src;
        const size_t j0 = table.tensor_begin[i], j1 = table.tensor_begin[i + 1];
        const int64_t ne0 = t.ne[0], nrows = t.n_rows();
        const size_t src_row = row_size(t.type, ne0);
        const int64_t per_batch = batch_rows(ne0);
        // Which job (or the source itself, -1) feeds each output.
        std::vector<long> feed(outs.size(), -1);
        for (size_t j = j0; j < j1; ++j)
            for (size_t f : table.jobs[j].outputs) feed[f] = static_cast<long>(j - j0);
        if (j1 > j0) f32.resize(static_cast<size_t>(std::min(per_batch, nrows) * ne0));
        buf.resize(j1 - j0);
        for (size_t j = j0; j < j1; ++j)
            buf[j - j0].resize(static_cast<size_t>(std::min(per_batch, nrows)) * row_size(table.jobs[j].type, ne0));
        std::vector<TypeId> types;
        for (size_t j = j0; j < j1; ++j) types.push_back(table.jobs[j].type);

        for (int64_t r0 = 0; r0 < nrows; r0 += per_batch) {
            const int64_t n = std::min(per_batch, nrows - r0);
            if (j1 > j0) {
                // Threads claim small row ranges (so a thread slowed by other work on the machine holds
                // up no one), dequantize them once and run every job on them. Rows are independent.
                const int nt = static_cast<int>(std::clamp<int64_t>(n_threads, 1, n));
                const int64_t chunk = std::max<int64_t>(1, n / (4 * nt));
                std::atomic<int64_t> next{0};
                std::vector<std::vector<double>> spent(static_cast<size_t>(nt), std::vector<double>(j1 - j0 + 1, 0.0));
                run_threads(nt, [&](int ti) {
                    std::vector<double>& sp = spent[static_cast<size_t>(ti)];
                    for (int64_t a; (a = next.fetch_add(chunk)) < n;) {
                        const int64_t b = std::min(a + chunk, n);
                        auto c0 = Clock::now();
                        for (int64_t r = a; r < b; ++r)
                            type_traits(t.type).dequantize_row(t.data + static_cast<size_t>(r0 + r) * src_row,
                                                               f32.data() + r * ne0, ne0);
                        sp[j1 - j0] += since(c0);
                        for (size_t j = j0; j < j1; ++j) {
                            const QuantJob& job = table.jobs[j];
                            c0 = Clock::now();
                            type_traits(job.type).quantize_rows(f32.data() + a * ne0,
                                                                buf[j - j0].data() + static_cast<size_t>(a) * row_size(job.type, ne0),
                                                                b - a, ne0, job.weights ? job.weights->data() : nullptr);
                            sp[j - j0] += since(c0);
                        }
                    }
                });
                for (const auto& sp : spent) {
                    eta.done(read_kind, 0, sp[j1 - j0]);
                    for (size_t j = j0; j < j1; ++j) eta.done(job_kind[j], 0, sp[j - j0]);
                }
                eta.done(read_kind, static_cast<double>(n * ne0), 0);
                for (size_t j = j0; j < j1; ++j) eta.done(job_kind[j], static_cast<double>(n * ne0), 0);
            }
            // Writing and hashing, one output per thread at a time.
            std::atomic<size_t> next_out{0};
            run_threads(std::min<int>(n_threads, static_cast<int>(active.size())), [&](int) {
                for (size_t k; (k = next_out.fetch_add(1)) < active.size();) {
                    const size_t f = active[k];
                    if (feed[f] < 0) {
                        writers[f]->write_tensor_data(t.data + static_cast<size_t>(r0) * src_row, static_cast<size_t>(n) * src_row);
                    } else {
                        const TypeId ty = table.jobs[j0 + static_cast<size_t>(feed[f])].type;
                        writers[f]->write_tensor_data(buf[static_cast<size_t>(feed[f])].data(), static_cast<size_t>(n) * row_size(ty, ne0));
                    }
                }
            });
            // These source rows are done: drop their pages now, so even a vocabulary-sized tensor costs
            // one batch of resident memory (the pages at the batch edges go with the tensor).
            release_mapped_pages(t.data + static_cast<size_t>(r0) * src_row, static_cast<size_t>(n) * src_row);
            if (o.on_progress) {
                QuantProgress p;
                p.tensor = i;
                p.n_tensors = order.size();
                p.tensor_name = t.name;
                p.types = types;
                p.jobs_done = jobs_done;
                p.jobs_total = table.jobs.size();
                for (const auto& w : writers) p.bytes_written += w->bytes_written();
                p.elapsed_s = since(t_start);
                const auto [left, spent] = eta.remaining_and_spent();
                p.fraction = spent + left > 0 ? spent / (spent + left) : 0;
                // Thread-seconds turn into wall seconds at the parallelism reached so far.
                if (spent > 0 && p.elapsed_s > 0) p.eta_s = left / (spent / p.elapsed_s);
                o.on_progress(p);
            }
        }
        jobs_done += j1 - j0;
        res.bytes_read += t.nbytes;
        release_mapped_pages(t.data, t.nbytes);
        if (o.on_checkpoint && i + 1 < order.size() && since(last_checkpoint) >= o.checkpoint_seconds) {
            std::vector<std::pair<size_t, uint64_t>> at(outs.size(), {0, 0});
            for (size_t f = 0; f < outs.size(); ++f)
                if (outs[f].resumable) at[f].second = writers[f]->checkpoint(&at[f].first);
            o.on_checkpoint(at);
            last_checkpoint = Clock::now();
        }
    }
    for (size_t f = 0; f < outs.size(); ++f) {
        writers[f]->finish();
        res.sizes[f] = writers[f]->bytes_written();
        if (outs[f].hash) res.sha256[f] = hashers[f].hex_digest();
    }
    for (const QuantPlan* p : plans)
        for (const PlannedTensor& pt : p->tensors) res.bytes_written += row_size(pt.type, pt.src->ne[0]) * static_cast<uint64_t>(pt.src->n_rows());
    res.seconds = since(t_start);
    return res;
}

}  // namespace gemma
