// SIGINT to flag, and line reading on fd 0 that notices the interrupt (std::getline would just fail).
#include "runtime/console.h"

#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>

namespace gemma::console {
namespace {

std::atomic<bool> g_cancel{false};
std::atomic<int> g_count{0};
pthread_t g_main_thread;
static_assert(std::atomic<bool>::is_always_lock_free && std::atomic<int>::is_always_lock_free,
              "the signal handler needs lock-free atomics");

void on_sigint(int) {
    // The kernel may pick any thread (the model's workers too); only the main thread's read() must see
    // EINTR, so pass the signal on to it.
    if (!pthread_equal(pthread_self(), g_main_thread)) {
        pthread_kill(g_main_thread, SIGINT);
        return;
    }
    g_cancel.store(true);
    g_count.fetch_add(1);
}

// Bytes read past the last returned line (stdin is not line-buffered at this level).
std::string& carry() {
    static std::string s;
    return s;
}

}  // namespace

void install_interrupt_handler() {
    g_main_thread = pthread_self();
    struct sigaction sa = {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: read() must return EINTR so the prompt can react
    sigaction(SIGINT, &sa, nullptr);
}

std::atomic<bool>& cancel_flag() { return g_cancel; }
int interrupt_count() { return g_count.load(); }

void reset_interrupts() {
    g_cancel.store(false);
    g_count.store(0);
}

ReadResult read_line(std::string* line) {
    std::string& buf = carry();
    line->clear();
    for (;;) {
        const size_t nl = buf.find('\n');
        if (nl != std::string::npos) {
            line->assign(buf, 0, nl);
            buf.erase(0, nl + 1);
            if (!line->empty() && line->back() == '\r') line->pop_back();
            return ReadResult::Line;
        }
        char chunk[4096];
        const ssize_t n = ::read(0, chunk, sizeof chunk);
        if (n > 0) {
            buf.append(chunk, static_cast<size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) {
            buf.clear();
            return ReadResult::Interrupted;
        }
        if (buf.empty()) return ReadResult::Eof;
        line->swap(buf);
        buf.clear();
        return ReadResult::Line;
    }
}

bool stdin_is_terminal() { return ::isatty(0) == 1; }

}  // namespace gemma::console
