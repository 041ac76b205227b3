// Acceptance: the official openai npm client (tests/server, node:test) against a live `gemma serve` process.
#include "e2e/test_server_process.h"

namespace gemma {
namespace {

using namespace test;

TEST(ServerOpenAI, OfficialNodeClient) {
    const std::string dir = std::string(GEMMA_SOURCE_DIR) + "/tests/server";
    ensure_node_modules(dir);
    if (HasFatalFailure()) return;
    const std::string key = "sk-test-123";
    ServeProcess server({tiny_model(), "--port", "0", "--api-key", key, "--alias", "tiny-test", "--parallel", "2",
                         "--ctx", "512", "-t", "2", "--kv-type", "f32"});
    const int port = server.wait_ready(std::chrono::seconds(120));
    ASSERT_GT(port, 0) << "gemma serve did not come up:\n" << server.log();

    const std::string env = "GEMMA_SERVER_URL=http://127.0.0.1:" + std::to_string(port) + " GEMMA_API_KEY=" + key +
                            " GEMMA_MODEL_ID=tiny-test";
    std::string out;
    const int rc = run_shell("cd '" + dir + "' && " + env + " node --test openai.test.mjs structured.test.mjs", &out);
    EXPECT_EQ(rc, 0) << out << "\n--- server log ---\n" << server.log();
}

}  // namespace
}  // namespace gemma
