// Logits comparison helpers shared by the golden logits tests of every family.
#include "support/logits.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "model/context.h"
#include "model/model.h"
#include "support/golden.h"

namespace gemma::test {

std::vector<int32_t> read_ids(const std::string& path) {
    std::ifstream f(path);
    EXPECT_TRUE(f.good()) << path;
    std::vector<int32_t> v;
    std::string w;
    while (f >> w) {
        if (w == "gen:") continue;
        v.push_back(static_cast<int32_t>(std::stol(w)));
    }
    return v;
}

std::vector<float> read_floats(const std::string& path) {
    const auto b = read_file_bytes(path);
    std::vector<float> v(b.size() / sizeof(float));
    std::memcpy(v.data(), b.data(), v.size() * sizeof(float));
    return v;
}

std::vector<float> model_logits(const Model& m, const std::vector<int32_t>& tokens, int32_t first, ops::ThreadPool& pool) {
    ContextParams p;
    p.n_ctx = static_cast<int64_t>(tokens.size());
    p.pool = &pool;
    Context ctx(m, p);
    const auto n = static_cast<int32_t>(tokens.size());
    std::vector<float> out(static_cast<size_t>(n - first) * static_cast<size_t>(m.config().n_vocab));
    ctx.forward(tokens, 0, n - first, out.data());
    return out;
}

double golden_tolerance(const std::string& label, const std::vector<float>& ref, const std::vector<float>& ref_f32) {
    if (label == "f32") return 2e-3;
    if (label == "F16") return 3e-3;
    if (label == "BF16") return 1e-2;
    return std::max(3e-2, 0.25 * rel_l2(ref.data(), ref_f32.data(), ref.size()));
}

int64_t argmax(const float* x, int64_t n) { return std::max_element(x, x + n) - x; }

void compare_logits(const std::string& what, const std::vector<float>& ours, const std::vector<float>& ref,
                    int64_t n_vocab, double tol, int64_t min_same) {
    ASSERT_EQ(ours.size(), ref.size()) << what;
    const int64_t n_rows = static_cast<int64_t>(ref.size()) / n_vocab;
    const double rl2 = rel_l2(ours.data(), ref.data(), ref.size());
    int64_t same = 0;
    std::ostringstream diag;
    for (int64_t r = 0; r < n_rows; ++r) {
        const int64_t a = argmax(ours.data() + r * n_vocab, n_vocab), b = argmax(ref.data() + r * n_vocab, n_vocab);
        if (a == b) ++same;
        else diag << "  argmax differs at row " << r << ": expected " << b << ", got " << a << "\n";
    }
    std::printf("[ logits ] %-28s rel_l2 %.3g (tol %.3g), argmax %lld/%lld\n", what.c_str(), rl2, tol,
                static_cast<long long>(same), static_cast<long long>(n_rows));
    if (rl2 > tol || same < min_same) {
        // The largest differences say where (row = position, index = token) things went wrong.
        std::vector<size_t> idx(ref.size());
        for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
        std::partial_sort(idx.begin(), idx.begin() + 8, idx.end(), [&](size_t x, size_t y) {
            return std::fabs(ours[x] - ref[x]) > std::fabs(ours[y] - ref[y]);
        });
        for (int i = 0; i < 8; ++i)
            diag << "  row " << idx[i] / static_cast<size_t>(n_vocab) << " token " << idx[i] % static_cast<size_t>(n_vocab)
                 << ": expected " << ref[idx[i]] << ", got " << ours[idx[i]] << "\n";
        for (int64_t r = 0; r < n_rows; ++r)
            diag << "  row " << r << " rel_l2 "
                 << rel_l2(ours.data() + r * n_vocab, ref.data() + r * n_vocab, static_cast<size_t>(n_vocab)) << "\n";
    }
    EXPECT_LE(rl2, tol) << what << "\n" << diag.str();
    EXPECT_GE(same, min_same) << what << "\n" << diag.str();
}

}  // namespace gemma::test
