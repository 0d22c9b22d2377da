// The HTTP API of fieldsyncd (docs/protocol.md), independent of the transport: a request in, a
// response out through a callback. The session (server.cpp) owns sockets and TLS; this layer
// owns routing, authentication, authorization and the hand-off to the writer thread and the
// reader pool. It never touches SQLite on the caller's thread.
//
// Thread-safety: handle() may be called from any network thread concurrently. The reply
// callback runs on a writer, reader or network thread; the caller posts it back to its strand.
#pragma once

#include "schema/catalog.hpp"
#include "server/config.hpp"
#include "server/metrics.hpp"
#include "server/pull_prefetch.hpp"
#include "server/throttle.hpp"
#include "sync/engine.hpp"
#include "sync/writer.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace fieldsync {
class rollups;
}

namespace fieldsync::server {

class review_api;
namespace web {
class login_throttle;
}

enum class method { get, post, other };

struct http_request {
    fieldsync::server::method method = method::other;
    std::string target;
    std::string content_type;
    std::string authorization;
    // For the web page: its session cookie and CSRF token, the browser's Origin and the Host it
    // asked for (same-origin checks), conditional and compressed static answers.
    std::string cookie;     // the Cookie header
    std::string csrf_token; // X-CSRF-Token
    std::string origin;     // Origin
    std::string host;       // Host
    std::string if_none_match;
    std::string accept_encoding;
    std::string body;
    std::string request_id;
    std::string client_address; // the peer's IP address as text (for throttling and its log)
    std::chrono::steady_clock::time_point started;
};

struct http_response {
    unsigned status = 200;
    std::string body;
    std::string content_type = "application/json";
    std::vector<std::pair<std::string, std::string>> headers;
};

// What the request log line says besides the HTTP basics. Never a token, password or ID number.
struct request_facts {
    std::string route = "other"; // a fixed label, e.g. "/v1/sync/push"
    std::string user;
    std::string device;
    std::string error; // the error code of a non-2xx answer
    std::uint64_t applied = 0, rejected = 0, duplicates = 0, conflicts = 0, changes = 0;
};

// `{"error":{"code":…,"message":…}}` with the given status.
http_response error_response(unsigned status, std::string_view code, std::string_view message);

class api {
public:
    using reply_fn = std::function<void(http_response, request_facts)>;

    // `monthly`: the rollups observer of `eng`, for approvals and reports of months.
    api(const config& cfg, engine& eng, writer& w, reader_pool& readers, rollups& monthly,
        fieldsync::server::metrics& m);
    ~api();

    void handle(http_request req, reply_fn reply);

    // Called once per finished request (by the session, after the response is queued): metrics
    // and the JSON log line on stderr.
    void record(const http_request& req, const http_response& res, const request_facts& facts);
    // The same for a request that never reached handle() (413, 400 from the parser, timeouts).
    void record_transport_error(std::string_view request_id, unsigned status,
                                std::string_view code);

    // From now on, /v1/healthz answers 503 so load balancers drain this instance.
    void begin_shutdown() { shutting_down_ = true; }
    // Drops prepared pull pages kept longer than pull_page_keep_ms (the server's timer).
    void drop_expired_pull_pages();
    fieldsync::server::metrics& metrics() { return metrics_; }

private:
    struct context;
    void dispatch_authenticated(std::shared_ptr<context> ctx, sql::connection& c);
    void login(std::shared_ptr<context> ctx);
    // Cookie-authenticated requests: resolves the session, checks CSRF and Origin. False if it
    // answered (refused) already.
    bool authenticate_session(const std::shared_ptr<context>& ctx, sql::connection& c,
                              const std::string& cookie);
    // Answers an authenticated pull, from a page prepared in advance when there is one.
    void answer_pull(const std::shared_ptr<context>& ctx, sql::connection& c, const principal& who,
                     const pull_request& req);
    // Computes a pull's page on this reader and sends it.
    void compute_page(const std::shared_ptr<context>& ctx, sql::connection& c, const principal& who,
                      const pull_request& req);
    // Sends a page and, unless it was the last, prepares the next one.
    void send_page(const std::shared_ptr<context>& ctx, const principal& who,
                   const pull_request& req, pull_prefetch::page page);
    // Prepares the page `next` asks for on a reader while the current one travels.
    void prepare_next_page(const principal& who, pull_request next);

    const config& cfg_;
    engine& engine_;
    writer& writer_;
    reader_pool& readers_;
    fieldsync::server::metrics& metrics_;
    std::atomic<bool> shutting_down_{false};
    attempt_limiter enrol_limiter_;      // failed POST /v1/enrol per client address
    std::unique_ptr<review_api> review_; // /v1/review/…, /v1/rollups/…, /v1/admin/access-log
    std::unique_ptr<web::login_throttle> logins_; // failed web logins per user and address
    const std::string known_key_;                 // MAC key of the fs_known cookies
    pull_prefetch prefetch_;                      // next pages of pulls in progress
};

} // namespace fieldsync::server
