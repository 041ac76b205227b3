// The shared quantization pass: several plans in one pass equal separate `quantize` runs, one job per distinct
// (tensor, type, weights), hashes of the bytes as written, and resuming a killed pass from its checkpoint.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/sha256.h"
#include "gguf/gguf.h"
#include "quant/quantize_files.h"
#include "quant/quantize_model.h"
#include "quant/quantize_plan.h"
#include "support/gguf_compare.h"
#include "support/golden.h"

namespace gemma {
namespace {

namespace fs = std::filesystem;

struct Fixture {
    std::unique_ptr<GgufFile> src = GgufFile::open(test::golden("tiny-7b/tiny-7b-f32.gguf"));
    std::string im_path = test::golden("tiny-7b/tiny-7b-imatrix.gguf");
    ImportanceWeights with_im{load_imatrix(im_path), im_path}, without_im;
    QuantPlan plan(Ftype f, bool im) {
        return plan_quantization(*src, f, im ? with_im : without_im, {src->path(), im_path, false});
    }
};

std::string quantize_alone(Ftype f, bool im, const std::string& out) {
    QuantizeOptions q;
    q.input = test::golden("tiny-7b/tiny-7b-f32.gguf");
    q.output = out;
    q.ftype = f;
    q.imatrix_path = im ? test::golden("tiny-7b/tiny-7b-imatrix.gguf") : "";
    q.quiet = true;
    quantize_model(q);
    return out;
}

TEST(QuantizeFiles, OnePassEqualsSeparateRunsWithOneJobPerDistinctPair) {
    Fixture fx;
    const std::string dir = test::temp_dir();
    const std::vector<std::pair<Ftype, bool>> mixes = {
        {Ftype::Q4_K_S, true}, {Ftype::Q4_K_M, true}, {Ftype::Q3_K_M, true}, {Ftype::IQ4_XS, true}, {Ftype::Q8_0, false}};
    std::vector<QuantPlan> plans;
    for (const auto& [f, im] : mixes) plans.push_back(fx.plan(f, im));
    std::vector<QuantOutput> outs;
    for (size_t i = 0; i < plans.size(); ++i) outs.push_back({dir + "/" + std::to_string(i) + ".gguf", &plans[i], true});
    QuantFilesOptions o;
    o.threads = 3;
    const QuantFilesResult r = quantize_files(outs, o);

    std::set<std::pair<std::string, TypeId>> pairs;
    size_t quantized = 0;
    for (size_t i = 0; i < plans.size(); ++i) {
        const std::string alone = quantize_alone(mixes[i].first, mixes[i].second, dir + "/alone.gguf");
        EXPECT_EQ(test::read_file_bytes(outs[i].path), test::read_file_bytes(alone)) << i;
        EXPECT_EQ(r.sha256[i], sha256_file(outs[i].path)) << i;
        EXPECT_EQ(r.sizes[i], fs::file_size(outs[i].path)) << i;
        for (const PlannedTensor& t : plans[i].tensors)
            if (!t.copied()) {
                pairs.insert({t.src->name, t.type});
                ++quantized;
            }
    }
    EXPECT_EQ(r.jobs_run, pairs.size());
    EXPECT_EQ(r.jobs_planned, quantized);
    EXPECT_LT(r.jobs_run, r.jobs_planned);
}

// Q8_0 (like the float types) ignores importance weights: with or without them it is one job.
TEST(QuantizeFiles, WeightsOnlyMatterToTypesThatUseThem) {
    Fixture fx;
    const QuantPlan a = fx.plan(Ftype::Q8_0, true), b = fx.plan(Ftype::Q8_0, false);
    const QuantPlan c = fx.plan(Ftype::Q4_0, true), d = fx.plan(Ftype::Q4_0, false);
    EXPECT_EQ(plan_jobs({&a, &b}).jobs.size(), plan_jobs({&a}).jobs.size());
    // Q4_0 uses them: every tensor the imatrix has weights for is a second job (token_embd has none).
    size_t weighted = 0;
    for (const QuantJob& j : plan_jobs({&c}).jobs) weighted += j.weights != nullptr;
    EXPECT_GT(weighted, 0u);
    EXPECT_EQ(plan_jobs({&c, &d}).jobs.size(), plan_jobs({&c}).jobs.size() + weighted);
    // The quantizer agrees: Q8_0 bytes do not depend on the weights.
    const std::string dir = test::temp_dir();
    EXPECT_EQ(test::tensor_difference(quantize_alone(Ftype::Q8_0, true, dir + "/a.gguf"),
                                      quantize_alone(Ftype::Q8_0, false, dir + "/b.gguf")),
              "");
}

// A pass killed after a checkpoint leaves "<file>.partial"; the next pass continues it from there and ends
// with the bytes (and hash) of an uninterrupted pass. A temporary that is not the checkpointed one is
// started over, never trusted.
TEST(QuantizeFiles, ResumesFromACheckpoint) {
    Fixture fx;
    const std::string dir = test::temp_dir();
    const QuantPlan km = fx.plan(Ftype::Q4_K_M, true), ks = fx.plan(Ftype::Q4_K_S, true);
    const std::string want_m = quantize_alone(Ftype::Q4_K_M, true, dir + "/m.gguf");
    const std::string want_s = quantize_alone(Ftype::Q4_K_S, true, dir + "/s.gguf");

    std::vector<QuantOutput> outs = {{dir + "/out-m.gguf", &km, true, true}, {dir + "/out-s.gguf", &ks, true, true}};
    std::vector<std::pair<size_t, uint64_t>> saved;
    QuantFilesOptions o;
    o.threads = 2;
    o.checkpoint_seconds = 0;
    o.on_checkpoint = [&](const std::vector<std::pair<size_t, uint64_t>>& at) {
        if (at[0].first >= 7 && saved.empty()) saved = at;
    };
    o.on_progress = [&](const QuantProgress& p) {
        if (p.tensor >= 12) throw Error("interrupted");
    };
    EXPECT_THROW(quantize_files(outs, o), Error);
    ASSERT_EQ(saved.size(), 2u);
    EXPECT_FALSE(fs::exists(outs[0].path));
    ASSERT_TRUE(fs::exists(outs[0].path + ".partial"));
    EXPECT_GT(fs::file_size(outs[0].path + ".partial"), saved[0].second);  // written past the checkpoint

    for (size_t i = 0; i < 2; ++i) {
        outs[i].resume_tensors = saved[i].first;
        outs[i].resume_bytes = saved[i].second;
    }
    // The second output's temporary is swapped for the first's: not its header, so it starts over.
    fs::copy_file(outs[0].path + ".partial", outs[1].path + ".partial", fs::copy_options::overwrite_existing);
    outs[1].resume_bytes = saved[0].second;
    outs[1].resume_tensors = saved[0].first;
    QuantFilesOptions o2;
    o2.threads = 2;
    const QuantFilesResult r = quantize_files(outs, o2);
    EXPECT_EQ(r.resumed, 1u);
    EXPECT_EQ(test::read_file_bytes(outs[0].path), test::read_file_bytes(want_m));
    EXPECT_EQ(test::read_file_bytes(outs[1].path), test::read_file_bytes(want_s));
    EXPECT_EQ(r.sha256[0], sha256_file(want_m));
    EXPECT_EQ(r.sha256[1], sha256_file(want_s));
    EXPECT_FALSE(fs::exists(outs[0].path + ".partial"));
    EXPECT_FALSE(fs::exists(outs[1].path + ".partial"));
}

TEST(QuantizeFiles, WriterResumesOnlyAtItsOwnTensorBoundaries) {
    Fixture fx;
    const std::string path = test::temp_dir() + "/w.gguf";
    auto writer = [&] {
        auto w = std::make_unique<GgufWriter>(path);
        w->set("general.architecture", GgufValue::string("x"));
        w->add_tensor("a", TypeId::F32, {64});
        w->add_tensor("b", TypeId::F32, {64});
        w->set_resumable();
        return w;
    };
    const std::vector<float> a(64, 1.0f), b(64, 2.0f);
    size_t done = 0;
    uint64_t bytes = 0;
    {
        auto w = writer();
        w->write_header();
        w->write_tensor_data(a.data(), 256);
        bytes = w->checkpoint(&done);
    }  // destroyed unfinished: a resumable temporary stays
    EXPECT_EQ(done, 1u);
    ASSERT_TRUE(fs::exists(path + ".partial"));
    EXPECT_FALSE(writer()->resume(1, bytes + 32));  // not where tensor 1 starts
    EXPECT_FALSE(writer()->resume(2, bytes));
    auto w = writer();
    Sha256 h;
    w->set_observer([&](const void* p, size_t n) { h.update(p, n); });
    ASSERT_TRUE(w->resume(1, bytes));
    w->write_tensor_data(b.data(), 256);
    w->finish();
    EXPECT_EQ(h.hex_digest(), sha256_file(path));
    const auto f = GgufFile::open(path);
    EXPECT_EQ(reinterpret_cast<const float*>(f->tensor("b").data)[63], 2.0f);
}

}  // namespace
}  // namespace gemma
