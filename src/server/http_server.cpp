// The HTTP layer: httplib setup, API-key check, loading state, error bodies, request log, the small routes.
#include "server/http_server.h"

#include <malloc.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "server/http_internal.h"
#include "server/web_assets.h"

namespace gemma::server {
namespace {

using Clock = std::chrono::steady_clock;

thread_local Clock::time_point t_request_start{};

json props_sampling(const SamplerParams& p) {
    return json{{"temperature", p.temp},         {"top_k", p.top_k},
                {"top_p", p.top_p},              {"min_p", p.min_p},
                {"repeat_penalty", p.penalty_repeat}, {"repeat_last_n", p.penalty_last_n},
                {"presence_penalty", p.penalty_present}, {"frequency_penalty", p.penalty_freq}};
}

// The chat page asks for the API key itself, so it and its assets load without one.
bool is_public_path(const std::string& path) {
    return path == "/health" || path == "/v1/health" || path == "/" || path.rfind("/assets/", 0) == 0;
}

std::string utc_now() {
    const auto now = std::chrono::system_clock::now();
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    return buf;
}

}  // namespace

RequestLog& request_log() {
    static thread_local RequestLog log;
    return log;
}

double request_elapsed_s() {
    return t_request_start == Clock::time_point{} ? 0.0
                                                 : std::chrono::duration<double>(Clock::now() - t_request_start).count();
}

void send_error(httplib::Response& res, const ApiError& e) {
    res.status = e.status;
    res.set_content(dump(error_body(e)), "application/json");
    request_log().note = e.type + ": " + e.message;
    request_log().fields["error"] = json{{"type", e.type}, {"code", e.code}, {"message", e.message}};
}

struct HttpServer::Impl {
    ServerOptions opts;
    httplib::Server http;
    std::thread listener;
    int port = -1;
    std::unique_ptr<Backend> backend_owner;
    std::atomic<const Backend*> backend{nullptr};
    std::atomic<bool> stopped{false};
    std::atomic<bool> listener_done{false};
    std::atomic<bool> draining{false};
    Metrics metrics;
    // Gives freed heap pages back every few seconds: with dozens of HTTP threads each allocating request
    // bodies, malloc's per-thread arenas otherwise keep their peaks and RSS creeps for minutes.
    std::thread trimmer;
    std::mutex trim_mu;
    std::condition_variable trim_cv;
    Clock::time_point started = Clock::now();

    explicit Impl(ServerOptions o) : opts(std::move(o)) {}

    // Route wrapper: the loaded backend, or 503; ApiError -> its status; anything else -> 500.
    template <typename F>
    void guarded(httplib::Response& res, F&& fn) {
        const Backend* be = backend.load(std::memory_order_acquire);
        try {
            if (!be) throw ApiError(503, "unavailable_error", "model_loading", "Loading model");
            fn(*be);
        } catch (const ApiError& e) {
            send_error(res, e);
        } catch (const std::exception& e) {
            send_error(res, ApiError(500, "server_error", "internal_error", e.what()));
        }
    }
    template <typename F>
    httplib::Server::Handler route(F fn) {
        return [this, fn](const httplib::Request& req, httplib::Response& res) {
            guarded(res, [&](const Backend& be) { fn(be, req, res); });
        };
    }
    // POST routes read the body themselves: a JSON body is taken as JSON whatever its Content-Type
    // (curl -d says form-urlencoded, which httplib would otherwise parse as a form, capped at 8 KiB).
    template <typename F>
    httplib::Server::HandlerWithContentReader post_route(F fn) {
        return [this, fn](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& read) {
            std::string body;
            const bool ok = read([&](const char* data, size_t n) {
                body.append(data, n);
                return true;
            });
            if (!ok) return;  // httplib has set the status (413 too large, 400 broken); the error handler fills in
            guarded(res, [&](const Backend& be) { fn(be, req, body, res); });
        };
    }

    void setup();
};

void HttpServer::Impl::setup() {
    const int threads = opts.http_threads > 0 ? opts.http_threads : opts.sched.n_slots + opts.sched.max_queue + 8;
    http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
    http.set_payload_max_length(opts.max_body_bytes);
    http.set_tcp_nodelay(true);
    // Long generations are written long after the request was read; only stalled writes should fail.
    http.set_write_timeout(60, 0);

    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
        t_request_start = Clock::now();
        request_log().note.clear();
        request_log().fields = json::object();
        if (draining.load(std::memory_order_acquire) && req.path != "/metrics") {
            if (req.path == "/health" || req.path == "/v1/health") {
                res.status = 503;
                res.set_content(dump(json{{"status", "shutting_down"}}), "application/json");
            } else {
                send_error(res, ApiError(503, "unavailable_error", "shutting_down",
                                         "The server is shutting down and takes no new requests."));
            }
            return httplib::Server::HandlerResponse::Handled;
        }
        if (opts.api_key.empty() || is_public_path(req.path)) return httplib::Server::HandlerResponse::Unhandled;
        const std::string auth = req.get_header_value("Authorization");
        if (auth == "Bearer " + opts.api_key) return httplib::Server::HandlerResponse::Unhandled;
        send_error(res, ApiError(401, "authentication_error", "invalid_api_key",
                                 auth.empty() ? "Missing API key: send it as 'Authorization: Bearer <key>'."
                                              : "Incorrect API key provided."));
        return httplib::Server::HandlerResponse::Handled;
    });
    http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        if (res.status == 404)
            send_error(res, ApiError(404, "not_found_error", "not_found", "Unknown route: " + req.method + " " + req.path));
        else if (res.status == 413)
            send_error(res, ApiError(413, "invalid_request_error", "request_too_large", "The request body is too large."));
        else
            send_error(res, ApiError(res.status, res.status >= 500 ? "server_error" : "invalid_request_error",
                                     "http_" + std::to_string(res.status), "HTTP error " + std::to_string(res.status)));
        return httplib::Server::HandlerResponse::Handled;
    }));
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "internal error";
        try {
            if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
            what = e.what();
        } catch (...) {
        }
        send_error(res, ApiError(500, "server_error", "internal_error", what));
    });
    http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
        metrics.request(req.path, res.status);
        const double ms = 1e3 * request_elapsed_s();
        t_request_start = {};
        RequestLog& log = request_log();
        if (opts.log_requests && opts.log_json) {
            json line = {{"time", utc_now()}, {"remote", req.remote_addr}, {"method", req.method}, {"path", req.path},
                         {"status", res.status}, {"duration_ms", std::round(ms * 10) / 10}};
            line.update(log.fields);
            const std::string s = dump(line) + "\n";
            std::fwrite(s.data(), 1, s.size(), stderr);
        } else if (opts.log_requests) {
            std::fprintf(stderr, "serve: %s %s %s %d %.0f ms%s%s\n", req.remote_addr.c_str(), req.method.c_str(),
                         req.path.c_str(), res.status, ms, log.note.empty() ? "" : " - ", log.note.c_str());
        }
        log.note.clear();
        log.fields = json::object();
    });

    auto health = [this](const httplib::Request&, httplib::Response& res) {
        const bool ready = backend.load(std::memory_order_acquire) != nullptr;
        res.status = ready ? 200 : 503;
        res.set_content(dump(json{{"status", ready ? "ok" : "loading"}}), "application/json");
    };
    http.Get("/health", health);
    http.Get("/v1/health", health);
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
        const Backend* be = backend.load(std::memory_order_acquire);
        res.set_content(metrics.render(be ? be->sched.get() : nullptr, be != nullptr),
                        "text/plain; version=0.0.4; charset=utf-8");
    });
    // The chat page and its files, embedded at build time (web/).
    for (const WebAsset& a : web_assets()) {
        http.Get(a.path, [&a](const httplib::Request&, httplib::Response& res) {
            res.set_content(reinterpret_cast<const char*>(a.data), a.size, a.content_type);
            res.set_header("Cache-Control", "no-cache");
        });
    }

    auto models = route([this](const Backend& be, const httplib::Request&, httplib::Response& res) {
        const auto created = std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::system_clock::now().time_since_epoch()).count();
        json m = {{"id", be.model_id}, {"object", "model"}, {"created", created}, {"owned_by", "gemma-gguf"},
                  {"meta", {{"n_ctx_train", be.model->config().n_ctx_train}, {"n_vocab", be.model->config().n_vocab},
                            {"n_embd", be.model->config().n_embd}}}};
        res.set_content(dump(json{{"object", "list"}, {"data", json::array({m})}}), "application/json");
    });
    http.Get("/v1/models", models);
    http.Get("/models", models);

    http.Get("/props", route([this](const Backend& be, const httplib::Request&, httplib::Response& res) {
        const auto slots = be.sched->slots();
        int idle = 0;
        for (const SlotInfo& s : slots) idle += s.busy ? 0 : 1;
        json j = {{"default_generation_settings", {{"n_ctx", be.sched->n_ctx()}, {"params", props_sampling(opts.defaults)}}},
                  {"n_ctx", be.sched->n_ctx()},
                  {"total_slots", be.sched->n_slots()},
                  {"idle_slots", idle},
                  {"queued", be.sched->n_queued()},
                  {"model", be.model_id},
                  {"model_path", be.model_path},
                  {"chat_template", be.tok->vocab().chat_template()},
                  {"build_info", "gemma-gguf"}};
        res.set_content(dump(j), "application/json");
    }));
    http.Get("/slots", route([](const Backend& be, const httplib::Request&, httplib::Response& res) {
        json arr = json::array();
        for (const SlotInfo& s : be.sched->slots())
            arr.push_back({{"id", s.id}, {"is_processing", s.busy}, {"n_ctx", s.n_ctx}, {"n_cached", s.n_cached}});
        res.set_content(dump(arr), "application/json");
    }));
    using Body = const std::string&;
    http.Post("/tokenize", post_route([](const Backend& be, const httplib::Request&, Body body, httplib::Response& res) {
        res.set_content(dump(tokenize_json(parse_body(body), *be.tok)), "application/json");
    }));
    http.Post("/detokenize", post_route([](const Backend& be, const httplib::Request&, Body body, httplib::Response& res) {
        res.set_content(dump(detokenize_json(parse_body(body), *be.tok)), "application/json");
    }));
    auto chat = post_route([](const Backend& be, const httplib::Request&, Body body, httplib::Response& res) {
        handle_completion(be, Endpoint::Chat, body, res);
    });
    auto completions = post_route([](const Backend& be, const httplib::Request&, Body body, httplib::Response& res) {
        handle_completion(be, Endpoint::Completion, body, res);
    });
    for (const char* p : {"/v1/chat/completions", "/chat/completions"}) http.Post(p, chat);
    for (const char* p : {"/v1/completions", "/completions"}) http.Post(p, completions);
}

HttpServer::HttpServer(ServerOptions opts) : impl_(std::make_unique<Impl>(std::move(opts))) { impl_->setup(); }

HttpServer::~HttpServer() {
    stop();
    wait();
}

int HttpServer::start() {
    // A client that disconnects mid-stream must cost a failed write, not the process.
    ::signal(SIGPIPE, SIG_IGN);
    Impl& m = *impl_;
    if (m.opts.port == 0) {
        m.port = m.http.bind_to_any_port(m.opts.host);
    } else {
        m.port = m.http.bind_to_port(m.opts.host, m.opts.port) ? m.opts.port : -1;
    }
    if (m.port < 0)
        throw_error("cannot listen on " + m.opts.host + ":" + std::to_string(m.opts.port) +
                    " (address in use, or not an address of this machine)");
    m.listener = std::thread([&m] {
        m.http.listen_after_bind();
        m.listener_done = true;
    });
    m.trimmer = std::thread([&m] {
        std::unique_lock<std::mutex> lk(m.trim_mu);
        while (!m.trim_cv.wait_for(lk, std::chrono::seconds(5), [&m] { return m.stopped.load(); })) malloc_trim(0);
    });
    return m.port;
}

void HttpServer::load(const std::string& model_path) {
    std::shared_ptr<const Model> model = Model::load(model_path);
    auto tok = std::make_shared<const Tokenizer>(Tokenizer::from_gguf(model->gguf()));
    attach(std::move(model), std::move(tok), model_path);
}

void HttpServer::attach(std::shared_ptr<const Model> model, std::shared_ptr<const Tokenizer> tok,
                        const std::string& path) {
    Impl& m = *impl_;
    auto be = std::make_unique<Backend>();
    be->model = std::move(model);
    be->tok = std::move(tok);
    be->model_path = path;
    be->model_id = !m.opts.alias.empty() ? m.opts.alias : std::filesystem::path(path).filename().string();
    SchedulerParams sp = m.opts.sched;
    if (!m.opts.draft_path.empty()) {
        be->draft = Model::load(m.opts.draft_path);
        check_same_vocab(be->tok->vocab(), Vocab::from_gguf(be->draft->gguf()), m.opts.draft_path);
        sp.draft = be->draft.get();
    }
    be->sched = std::make_unique<Scheduler>(*be->model, *be->tok, sp);
    be->grammars = std::make_unique<GrammarCache>(be->tok);
    be->metrics = &m.metrics;
    be->limits.n_vocab = static_cast<int32_t>(be->model->config().n_vocab);
    be->limits.n_ctx = be->sched->n_ctx();
    be->limits.defaults = m.opts.defaults;
    be->limits.defaults.validate(be->limits.n_vocab);
    m.backend_owner = std::move(be);
    m.backend.store(m.backend_owner.get(), std::memory_order_release);
}

void HttpServer::stop() {
    Impl& m = *impl_;
    if (m.stopped.exchange(true)) return;
    {
        std::lock_guard<std::mutex> lk(m.trim_mu);
    }
    m.trim_cv.notify_all();
    m.http.stop();
    // Streams in flight end now (finish_reason "stop" after what was generated) instead of running on.
    if (const Backend* be = m.backend.load(std::memory_order_acquire)) be->sched->cancel_all();
}

bool HttpServer::shutdown(std::chrono::milliseconds timeout) {
    Impl& m = *impl_;
    m.draining.store(true, std::memory_order_release);
    const auto end = Clock::now() + timeout;
    bool drained = false;
    while (!(drained = m.metrics.in_flight() == 0) && Clock::now() < end)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    stop();
    return drained;
}

void HttpServer::wait() {
    Impl& m = *impl_;
    // httplib's stop() does nothing before its listen loop has begun (a load that fails right after start()
    // can stop the server that early): once stopped, repeat it until the listener has returned.
    while (m.stopped.load() && m.listener.joinable() && !m.listener_done.load()) {
        m.http.stop();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (m.listener.joinable()) m.listener.join();
    if (m.trimmer.joinable()) m.trimmer.join();
    // httplib's workers are joined by now (listen returns after its task queue shut down), so no route
    // holds the backend any more; the scheduler's destructor cancels whatever was still queued.
    m.backend.store(nullptr, std::memory_order_release);
    m.backend_owner.reset();
}

int HttpServer::port() const { return impl_->port; }

Scheduler* HttpServer::scheduler() {
    const Backend* be = impl_->backend.load(std::memory_order_acquire);
    return be ? be->sched.get() : nullptr;
}

}  // namespace gemma::server
