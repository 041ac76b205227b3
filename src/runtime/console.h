// Console plumbing for interactive commands: a Ctrl-C flag instead of death, and EINTR-aware line input.
#pragma once
#include <atomic>
#include <string>

namespace gemma::console {

// Installs a SIGINT handler (without SA_RESTART, so a blocked read returns) that raises cancel_flag()
// and counts presses; a signal landing on another thread is forwarded to the calling (main) thread.
// Idempotent; call it from the thread that reads stdin.
void install_interrupt_handler();
std::atomic<bool>& cancel_flag();
int interrupt_count();
// Lowers the flag and zeroes the count (before each reply / each prompt).
void reset_interrupts();

enum class ReadResult { Line, Eof, Interrupted };
// One line from stdin without its '\n' (a final line without one counts). Interrupted: Ctrl-C came
// while waiting; the partial line is dropped.
ReadResult read_line(std::string* line);

bool stdin_is_terminal();

}  // namespace gemma::console
