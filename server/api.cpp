#include "server/api.hpp"

#include "schema/rules.hpp"
#include "server/auth.hpp"
#include "server/qr.hpp"
#include "server/review_api.hpp"
#include "server/static_files.hpp"
#include "server/web_session.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <cctype>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <mutex>

namespace fieldsync::server {

namespace json = boost::json;

namespace {

std::int64_t now_ms() {
    return system_wall_ms();
}

http_response json_response(unsigned status, const json::value& v) {
    http_response r;
    r.status = status;
    r.body = json::serialize(v);
    return r;
}

unsigned status_of(errc e) {
    switch (e) {
    case errc::invalid_argument:
    case errc::bad_cursor:
    case errc::sequence_gap:
        return 400;
    case errc::unauthorized:
    case errc::device_revoked:
    case errc::expired:
        return 401;
    case errc::forbidden:
        return 403;
    case errc::not_found:
        return 404;
    case errc::conflict:
        return 409;
    case errc::too_large:
        return 413;
    case errc::rate_limited:
        return 429;
    case errc::storage_failure:
    case errc::unsupported:
        return 503;
    default:
        return 500;
    }
}

json::object user_json(const auth::user& u) {
    json::array villages;
    for (const auto& v : u.villages)
        villages.emplace_back(v);
    return {{"username", u.username}, {"role", auth::to_string(u.role)},
            {"township", u.township}, {"villages", std::move(villages)},
            {"disabled", u.disabled}, {"created_ms", u.created_ms}};
}

json::object device_json(const auth::device_info& d) {
    json::object o{{"device", d.device},
                   {"user", d.username},
                   {"label", d.label},
                   {"enrolled_ms", d.enrolled_ms},
                   {"last_seq", d.last_seq}};
    o["revoked_ms"] = d.revoked_ms ? json::value(*d.revoked_ms) : json::value(nullptr);
    o["last_push_ms"] = d.last_push_ms ? json::value(*d.last_push_ms) : json::value(nullptr);
    return o;
}

json::object scope_json(const scope& s) {
    json::array villages;
    for (const auto& v : s.villages)
        villages.emplace_back(v);
    return {{"township", s.township}, {"villages", std::move(villages)}};
}

std::string_view str_field(const json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string_view(v->as_string()) : std::string_view{};
}

// Optional list of strings; nullopt if present and not a list of strings.
std::optional<std::vector<std::string>> string_list(const json::object& o, std::string_view key) {
    std::vector<std::string> out;
    const auto* v = o.if_contains(key);
    if (!v || v->is_null())
        return out;
    if (!v->is_array())
        return std::nullopt;
    for (const auto& x : v->as_array()) {
        if (!x.is_string())
            return std::nullopt;
        out.emplace_back(x.as_string());
    }
    return out;
}

bool is_json_content_type(std::string_view ct) {
    auto semi = ct.find(';');
    auto base = ct.substr(0, semi);
    while (!base.empty() && base.back() == ' ')
        base.remove_suffix(1);
    if (base.size() != 16)
        return false;
    for (std::size_t i = 0; i < base.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(base[i])) != "application/json"[i])
            return false;
    return true;
}

struct route {
    std::string label;
    std::string param;
    std::vector<method> methods;
    bool found = false;
};

// Paths of the API; `label` is what metrics and logs show (no user data in it).
route match(std::string_view path) {
    auto fixed = [](const char* label, std::vector<method> m) {
        return route{label, {}, std::move(m), true};
    };
    if (path == "/v1/healthz")
        return fixed("/v1/healthz", {method::get});
    if (path == "/metrics")
        return fixed("/metrics", {method::get});
    if (path == "/v1/enrol")
        return fixed("/v1/enrol", {method::post});
    if (path == "/v1/sync/push")
        return fixed("/v1/sync/push", {method::post});
    if (path == "/v1/sync/pull")
        return fixed("/v1/sync/pull", {method::post});
    if (path == "/v1/me")
        return fixed("/v1/me", {method::get});
    if (path == "/v1/session")
        return fixed("/v1/session", {method::get, method::post});
    if (path == "/v1/session/logout")
        return fixed("/v1/session/logout", {method::post});
    if (path == "/v1/admin/users")
        return fixed("/v1/admin/users", {method::get, method::post});
    if (path == "/v1/admin/devices")
        return fixed("/v1/admin/devices", {method::get});
    if (path == "/v1/admin/enrolment-codes")
        return fixed("/v1/admin/enrolment-codes", {method::post});
    // /v1/admin/users/{name}/{scope|disable|enable}, /v1/admin/devices/{id}/revoke
    auto param_route = [&](std::string_view prefix, std::initializer_list<const char*> actions,
                           const char* label_prefix) -> route {
        if (!path.starts_with(prefix))
            return {};
        auto rest = path.substr(prefix.size());
        auto slash = rest.find('/');
        if (slash == std::string_view::npos || slash == 0)
            return {};
        auto action = rest.substr(slash + 1);
        for (const char* a : actions)
            if (action == a)
                return route{std::string(label_prefix) + a,
                             std::string(rest.substr(0, slash)),
                             {method::post},
                             true};
        return {};
    };
    if (auto r = param_route("/v1/admin/users/", {"scope", "disable", "enable"},
                             "/v1/admin/users/:name/");
        r.found)
        return r;
    if (auto r = param_route("/v1/admin/devices/", {"revoke"}, "/v1/admin/devices/:id/"); r.found)
        return r;
    // Review and rollups: review_api routes within these and labels them itself.
    if (review_api::serves(path))
        return route{"/v1/review", {}, {method::get, method::post}, true};
    return {};
}

std::mutex log_mutex; // one log line at a time on stderr

std::string iso_time(std::int64_t ms) {
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms % 1000));
    return buf;
}

// A security event (logins and their refusals) as a JSON log line on stderr, whatever
// log_requests says. Never a password, cookie, token or CSRF token.
void log_event(json::object line) {
    json::object out{{"ts", iso_time(now_ms())}, {"level", "warn"}};
    for (auto& kv : line)
        out[kv.key()] = std::move(kv.value());
    std::string text = json::serialize(out);
    std::lock_guard lock(log_mutex);
    std::cerr << text << "\n";
}

json::object session_json(const web::session_info& s, std::string server_clock) {
    json::array villages;
    for (const auto& v : s.user.villages)
        villages.emplace_back(v);
    return {{"user", json::object{{"username", s.user.username},
                                  {"role", auth::to_string(s.user.role)},
                                  {"township", s.user.township},
                                  {"villages", std::move(villages)}}},
            {"csrf_token", s.csrf_token},
            {"expires_ms", s.expires_ms},
            {"server_clock", std::move(server_clock)}};
}

// What a login log line may say about the name typed: a known user's name, never anything
// else (a password typed into the name field must not reach the log).
json::object login_line(std::string_view event, const http_request& req,
                        const std::optional<auth::user>& u) {
    json::object line{
        {"event", event}, {"request_id", req.request_id}, {"client", req.client_address}};
    if (u)
        line["user"] = u->username;
    else
        line["user_unknown"] = true;
    return line;
}

} // namespace

http_response error_response(unsigned status, std::string_view code, std::string_view message) {
    return json_response(
        status, json::object{{"error", json::object{{"code", code}, {"message", message}}}});
}

struct api::context {
    http_request req;
    reply_fn reply;
    request_facts facts;
    route r;
    json::object body;
    std::string token;
    auth::identity id;
    std::optional<web::session_info> session; // set when the web session cookie authenticated

    void send(http_response res) { reply(std::move(res), std::move(facts)); }
    void fail(unsigned status, std::string_view code, std::string_view message) {
        facts.error = std::string(code);
        auto res = error_response(status, code, message);
        if (status == 503) // storage_failure, shutting_down: nothing stored, retry unchanged
            res.headers.emplace_back("Retry-After", "5");
        send(std::move(res));
    }
    void fail(const auth::failure& f) { fail(status_of(f.code), f.wire_code, f.message); }
    // A read job threw (I/O error, corrupt page): logged for the operator, 503 for the client.
    void read_failed(const std::exception& e) {
        {
            std::lock_guard lock(log_mutex);
            std::cerr << json::serialize(json::object{{"level", "error"},
                                                      {"request_id", req.request_id},
                                                      {"what", e.what()}})
                      << "\n";
        }
        fail(503, "storage_failure", "the database could not be read; try again");
    }
};

api::api(const config& cfg, engine& eng, writer& w, reader_pool& readers, rollups& monthly,
         server::metrics& m)
    : cfg_(cfg), engine_(eng), writer_(w), readers_(readers), metrics_(m),
      review_(std::make_unique<review_api>(eng, w, monthly, cfg.group_mutations)),
      logins_(std::make_unique<web::login_throttle>(
          web::login_throttle::settings{cfg.login_failures_per_user, cfg.login_failures_per_address,
                                        cfg.login_window_s * 1000, 30 * 1000})),
      known_key_(eng.derived_key("known browser")),
      prefetch_(pull_prefetch::settings{.keep_ms = cfg.pull_page_keep_ms}) {}

api::~api() = default;

void api::drop_expired_pull_pages() {
    prefetch_.drop_expired(now_ms());
}

void api::handle(http_request req, reply_fn reply) {
    auto ctx = std::make_shared<context>();
    ctx->req = std::move(req);
    ctx->reply = std::move(reply);
    // Path parameters are echoed in error messages: raw bytes there would make the JSON answer
    // invalid UTF-8 (fuzz_http: /v1/admin/devices/<0xd3…>/revoke).
    if (!is_valid_utf8(ctx->req.target))
        return ctx->fail(400, "invalid_utf8", "the request path is not valid UTF-8");
    std::string_view path = ctx->req.target;
    path = path.substr(0, path.find('?'));
    if (is_static_path(path)) {
        // The web page: embedded files, no authentication (the page logs in through the API).
        ctx->facts.route = path == "/" ? "/" : "/app/:file";
        if (ctx->req.method != method::get) {
            http_response res = error_response(405, "method_not_allowed", "use GET");
            add_page_headers(res);
            res.headers.emplace_back("Allow", "GET");
            ctx->facts.error = "method_not_allowed";
            return ctx->send(std::move(res));
        }
        auto res = static_file(path, ctx->req.if_none_match, ctx->req.accept_encoding);
        if (res.status == 404)
            ctx->facts.error = "not_found";
        return ctx->send(std::move(res));
    }
    ctx->r = match(path);
    ctx->facts.route = ctx->r.found ? ctx->r.label : "other";
    if (!ctx->r.found)
        return ctx->fail(404, "not_found", "no such endpoint");
    if (std::find(ctx->r.methods.begin(), ctx->r.methods.end(), ctx->req.method) ==
        ctx->r.methods.end()) {
        http_response res =
            error_response(405, "method_not_allowed", "this endpoint does not accept that method");
        std::string allow;
        for (auto m : ctx->r.methods)
            allow += allow.empty() ? "" : ", ", allow += m == method::get ? "GET" : "POST";
        res.headers.emplace_back("Allow", allow);
        ctx->facts.error = "method_not_allowed";
        return ctx->send(std::move(res));
    }

    if (ctx->r.label == "/v1/healthz") {
        if (shutting_down_)
            return ctx->fail(503, "shutting_down", "the server is shutting down");
        if (writer_.failed())
            return ctx->fail(503, "storage_failed",
                             "an fsync of the database's log failed: every write is refused "
                             "until fieldsyncd is restarted; check the disk first");
        return ctx->send(
            json_response(200, json::object{{"status", "ok"},
                                            {"server_clock", engine_.clock().now().to_string()}}));
    }
    if (ctx->r.label == "/metrics") {
        http_response res;
        res.content_type = "text/plain; version=0.0.4; charset=utf-8";
        res.body = metrics_.render({writer_.queue_depth(), readers_.queue_depth(),
                                    writer_.groups_committed(), writer_.checkpoints(),
                                    prefetch_.bytes(), prefetch_.hits(), prefetch_.waited()});
        return ctx->send(std::move(res));
    }

    if (ctx->req.method == method::post) {
        if (!is_json_content_type(ctx->req.content_type))
            return ctx->fail(415, "unsupported_media_type",
                             "send the body as Content-Type: application/json");
        if (!is_valid_utf8(ctx->req.body))
            return ctx->fail(400, "invalid_utf8", "the body is not valid UTF-8");
        json::parse_options opts;
        opts.max_depth = cfg_.max_json_depth;
        boost::system::error_code ec;
        auto v = json::parse(ctx->req.body, ec, {}, opts);
        if (ec == json::error::too_deep)
            return ctx->fail(400, "too_deep",
                             "the JSON nests deeper than " + std::to_string(cfg_.max_json_depth) +
                                 " levels");
        if (ec)
            return ctx->fail(400, "invalid_json", "the body is not valid JSON: " + ec.message());
        if (has_duplicate_keys(ctx->req.body, v))
            return ctx->fail(400, "duplicate_key",
                             "an object in the body names the same key twice");
        if (!v.is_object())
            return ctx->fail(400, "invalid_argument", "the body must be a JSON object");
        ctx->body = std::move(v.as_object());
        ctx->req.body.clear(); // parsed; free the text early
    }

    if (ctx->r.label == "/v1/enrol") {
        // Codes have 60 bits, but a public endpoint should not invite guessing at line rate.
        if (auto wait = enrol_limiter_.retry_after(ctx->req.client_address); wait > 0) {
            http_response res =
                error_response(429, "rate_limited",
                               "too many failed enrolments from this address; try again in " +
                                   std::to_string(wait) + " s");
            res.headers.emplace_back("Retry-After", std::to_string(wait));
            ctx->facts.error = "rate_limited";
            return ctx->send(std::move(res));
        }
        std::string code(str_field(ctx->body, "code"));
        std::string label(str_field(ctx->body, "label"));
        if (code.empty())
            return ctx->fail(400, "invalid_argument", "\"code\" is required");
        auto out = std::make_shared<auth::outcome<auth::enrolment>>();
        writer_.submit(
            [out, code, label](sql::connection& db) {
                *out = auth::redeem_enrolment_code(db, code, label, now_ms());
            },
            [this, ctx, out, code](boost::system::error_code ec) {
                if (ec)
                    return ctx->fail(503, "storage_failure", "could not store; try again");
                if (!*out) {
                    auto v = enrol_limiter_.failed(ctx->req.client_address);
                    // Who tried and what, never the code itself: its first 4 of 12 characters
                    // are enough to match a worker's report of a typo.
                    std::string prefix = auth::normalize_code(code).substr(0, 4);
                    std::string line =
                        json::serialize(json::object{{"ts", iso_time(now_ms())},
                                                     {"level", "warn"},
                                                     {"event", "enrol_failed"},
                                                     {"request_id", ctx->req.request_id},
                                                     {"client", ctx->req.client_address},
                                                     {"code_prefix", prefix},
                                                     {"failures", v.failures},
                                                     {"locked_s", v.locked_s}});
                    {
                        std::lock_guard lock(log_mutex);
                        std::cerr << line << "\n";
                    }
                    return ctx->fail(out->error);
                }
                const auto& e = *out->value;
                ctx->facts.user = e.owner.username;
                ctx->facts.device = e.device;
                ctx->send(json_response(
                    200, json::object{{"device", e.device},
                                      {"token", e.token},
                                      {"user", e.owner.username},
                                      {"role", auth::to_string(e.owner.role)},
                                      {"scope", scope_json(e.owner.scope())},
                                      {"server_clock", engine_.clock().now().to_string()}}));
            });
        return;
    }

    if (ctx->r.label == "/v1/session" && ctx->req.method == method::post)
        return login(ctx);

    // Everything else needs a device token, or (the web page) a session cookie. The tablets'
    // sync endpoints take device tokens only; the session endpoints take the cookie only.
    std::string_view authz = ctx->req.authorization;
    const bool session_route = ctx->r.label.starts_with("/v1/session");
    const bool bearer = !session_route && authz.size() >= 7 &&
                        (authz.substr(0, 7) == "Bearer " || authz.substr(0, 7) == "bearer ");
    std::string cookie;
    if (!bearer && !ctx->r.label.starts_with("/v1/sync/"))
        cookie = web::cookie_value(ctx->req.cookie, web::cookie_name);
    if (!bearer && cookie.empty()) {
        if (session_route)
            return ctx->fail(401, "unauthorized", "log in first (no session)");
        http_response res =
            error_response(401, "unauthorized", "send Authorization: Bearer <device token>");
        res.headers.emplace_back("WWW-Authenticate", "Bearer");
        ctx->facts.error = "unauthorized";
        return ctx->send(std::move(res));
    }
    if (bearer)
        ctx->token = std::string(authz.substr(7));
    readers_.submit([this, ctx, cookie = std::move(cookie)](sql::connection& c) {
        try {
            if (!cookie.empty()) {
                if (!authenticate_session(ctx, c, cookie))
                    return;
            } else {
                auto id = auth::authenticate(c, ctx->token);
                ctx->token.clear();
                if (!id)
                    return ctx->fail(id.error);
                ctx->id = std::move(*id.value);
            }
            ctx->facts.user = ctx->id.who.user;
            ctx->facts.device = ctx->session ? "" : ctx->id.who.device;
            const auto& label = ctx->r.label;
            if (label == "/v1/session")
                return ctx->send(json_response(
                    200, session_json(*ctx->session, engine_.clock().now().to_string())));
            if (label == "/v1/session/logout") {
                auto hash = ctx->session->cookie_hash;
                return writer_.submit(
                    [hash](sql::connection& db) { web::end_session(db, hash); },
                    [ctx](boost::system::error_code ec) {
                        if (ec)
                            return ctx->fail(503, "storage_failure", "not logged out; try again");
                        auto res = json_response(200, json::object{{"status", "logged_out"}});
                        res.headers.emplace_back("Set-Cookie", web::set_cookie_header("", 0));
                        ctx->send(std::move(res));
                    });
            }
            if (label == "/v1/me") {
                return ctx->send(json_response(
                    200, json::object{{"user", ctx->id.who.user},
                                      {"device", ctx->id.who.device},
                                      {"role", auth::to_string(ctx->id.role)},
                                      {"scope", scope_json(ctx->id.who.where)},
                                      {"server_clock", engine_.clock().now().to_string()}}));
            }
            if (label == "/v1/sync/pull") {
                std::string why;
                auto pull_req = decode_pull(ctx->body, &why);
                if (!pull_req)
                    return ctx->fail(400, "invalid_argument", why);
                principal who = ctx->id.who;
                // A caller may narrow a pull to one township inside their scope, never widen it.
                if (auto* t = ctx->body.if_contains("township"); t && !t->is_null()) {
                    if (!t->is_string())
                        return ctx->fail(400, "invalid_argument", "\"township\" must be a string");
                    std::string_view town = t->as_string();
                    if (who.where.whole_district())
                        who.where = scope{std::string(town), {}};
                    else if (town != who.where.township)
                        return ctx->fail(403, "forbidden", "this township is outside your scope");
                }
                return answer_pull(ctx, c, who, *pull_req);
            }
            dispatch_authenticated(ctx, c);
        } catch (const std::exception& e) {
            ctx->read_failed(e);
        }
    });
}

void api::answer_pull(const std::shared_ptr<context>& ctx, sql::connection& c, const principal& who,
                      const pull_request& req) {
    auto key = pull_prefetch::key(who.device, who.where.fingerprint(), req);
    // A page still being prepared is waited for; if it does not come the request computes it on
    // a reader like any other.
    auto taken = prefetch_.take(key, now_ms(), [this, ctx, who, req](auto page) {
        if (page)
            return send_page(ctx, who, req, std::move(*page));
        readers_.submit([this, ctx, who, req](sql::connection& rc) {
            try {
                compute_page(ctx, rc, who, req);
            } catch (const std::exception& e) {
                ctx->read_failed(e);
            }
        });
    });
    if (taken.ready)
        return send_page(ctx, who, req, std::move(*taken.ready));
    if (!taken.waiting)
        compute_page(ctx, c, who, req);
}

void api::compute_page(const std::shared_ptr<context>& ctx, sql::connection& c,
                       const principal& who, const pull_request& req) {
    auto res = engine_.pull(c, who, req, /*raw_json=*/true);
    if (!res) {
        if (res.error() == errc::bad_cursor)
            return ctx->fail(400, "bad_cursor",
                             "the cursor was not issued by this server; pull from the "
                             "beginning (no cursor)");
        if (res.error() == errc::storage_failure)
            return ctx->fail(503, "storage_failure",
                             "the server cannot tell what is stored since a write to its disk "
                             "failed; try again later");
        return ctx->fail(500, "internal", "the pull failed");
    }
    // The stored JSON is copied, not parsed and re-serialised.
    send_page(ctx, who, req,
              {serialize(*res), res->raw_count, res->cursor, res->complete || res->reset});
}

void api::send_page(const std::shared_ptr<context>& ctx, const principal& who,
                    const pull_request& req, pull_prefetch::page page) {
    ctx->facts.changes = page.changes;
    http_response answer;
    answer.body = std::move(page.body);
    ctx->send(std::move(answer));
    if (!page.last)
        prepare_next_page(who, pull_request{std::move(page.cursor), req.limit, req.shared_clocks});
}

void api::prepare_next_page(const principal& who, pull_request next) {
    auto key = pull_prefetch::key(who.device, who.where.fingerprint(), next);
    if (shutting_down_ || !prefetch_.reserve(key, who.device, now_ms()))
        return;
    readers_.submit([this, who, next = std::move(next), key = std::move(key)](sql::connection& c) {
        try {
            auto res = engine_.pull(c, who, next, /*raw_json=*/true);
            if (!res)
                return prefetch_.cancel(key);
            prefetch_.fill(
                key, {serialize(*res), res->raw_count, res->cursor, res->complete || res->reset});
        } catch (const std::exception&) {
            prefetch_.cancel(key); // the tablet's own request will meet the error and report it
        }
    });
}

// Runs on a reader thread with the caller authenticated: pushes and admin endpoints.
void api::dispatch_authenticated(std::shared_ptr<context> ctx, sql::connection& c) {
    const auto& label = ctx->r.label;
    if (label == "/v1/review") {
        std::string_view target = ctx->req.target;
        auto qmark = target.find('?');
        review_call call{ctx->req.method, target.substr(0, qmark),
                         qmark == std::string_view::npos ? std::string_view{}
                                                         : target.substr(qmark + 1),
                         ctx->body, ctx->id};
        ctx->facts.route = review_api::label_for(call.path);
        review_->handle(call, c, [ctx](http_response res) {
            if (res.status >= 400) {
                boost::system::error_code ec;
                auto v = json::parse(res.body, ec);
                if (!ec && v.is_object())
                    if (const auto* e = v.as_object().if_contains("error"); e && e->is_object())
                        ctx->facts.error = std::string(str_field(e->as_object(), "code"));
            }
            ctx->send(std::move(res));
        });
        return;
    }
    if (label == "/v1/sync/push") {
        if (ctx->id.role != auth::role::field_worker)
            return ctx->fail(403, "forbidden",
                             "only field workers' tablets push records; township heads and "
                             "district admins review on the web");
        std::string why;
        // Moved, not copied, into the json::value the decoder reads, and its field values on
        // into the mutations (a push is ~100 KB of JSON).
        json::value body(std::move(ctx->body));
        auto req = decode_push(std::move(body), &why);
        if (!req)
            return ctx->fail(400, "invalid_argument", why);
        submit_push(writer_, engine_, ctx->id.who, std::move(*req),
                    [this, ctx](result<push_result> res) {
                        if (!res) {
                            if (res.error() == errc::unsupported)
                                return ctx->fail(503, "shutting_down",
                                                 "the server is shutting down; retry later");
                            return ctx->fail(503, "storage_failure",
                                             "the push was not stored; retry it unchanged");
                        }
                        metrics_.mutations(res->applied, res->rejected, res->duplicates,
                                           res->conflicts_opened);
                        ctx->facts.applied = res->applied;
                        ctx->facts.rejected = res->rejected;
                        ctx->facts.duplicates = res->duplicates;
                        ctx->facts.conflicts = res->conflicts_opened;
                        ctx->send(json_response(200, encode(*res)));
                    });
        return;
    }

    // The admin API: district admins only.
    if (ctx->id.role != auth::role::district_admin)
        return ctx->fail(403, "forbidden", "only district admins may do this");
    if (label == "/v1/admin/users" && ctx->req.method == method::get) {
        json::array users;
        for (const auto& u : auth::list_users(c))
            users.push_back(user_json(u));
        return ctx->send(json_response(200, json::object{{"users", std::move(users)}}));
    }
    if (label == "/v1/admin/devices") {
        json::array devices;
        for (const auto& d : auth::list_devices(c))
            devices.push_back(device_json(d));
        return ctx->send(json_response(200, json::object{{"devices", std::move(devices)}}));
    }
    auto write = [this, ctx](auto apply, auto respond) {
        using out_t = decltype(apply(std::declval<sql::connection&>()));
        auto out = std::make_shared<std::optional<out_t>>();
        writer_.submit([out, apply](sql::connection& db) { *out = apply(db); },
                       [ctx, out, respond](boost::system::error_code ec) {
                           if (ec == errc::unsupported)
                               return ctx->fail(503, "shutting_down", "the server is stopping");
                           if (ec || !*out)
                               return ctx->fail(503, "storage_failure", "not stored; try again");
                           auto& o = **out;
                           if (!o)
                               return ctx->fail(o.error);
                           respond(*o.value);
                       });
    };
    const auto& body = ctx->body;
    const std::string& param = ctx->r.param;
    if (label == "/v1/admin/users") {
        auto role = auth::parse_role(str_field(body, "role"));
        auto villages = string_list(body, "villages");
        if (!role || !villages)
            return ctx->fail(400, "invalid_argument",
                             "give \"username\", \"role\" (field_worker, township_head or "
                             "district_admin), \"township\" and optionally \"villages\"");
        auth::user u;
        u.username = std::string(str_field(body, "username"));
        u.role = *role;
        u.township = std::string(str_field(body, "township"));
        u.villages = std::move(*villages);
        std::string password(str_field(body, "password"));
        return write(
            [u, password](sql::connection& db) {
                return auth::add_user(db, u, password, now_ms());
            },
            [ctx](const auth::user& made) { ctx->send(json_response(201, user_json(made))); });
    }
    if (label == "/v1/admin/users/:name/scope") {
        auto villages = string_list(body, "villages");
        if (!villages)
            return ctx->fail(400, "invalid_argument", "\"villages\" must be a list of codes");
        std::string township(str_field(body, "township"));
        return write(
            [param, township, v = *villages](sql::connection& db) {
                return auth::set_scope(db, param, township, v, now_ms());
            },
            [ctx](const auth::user& u) { ctx->send(json_response(200, user_json(u))); });
    }
    if (label == "/v1/admin/users/:name/disable" || label == "/v1/admin/users/:name/enable") {
        bool disable = label.ends_with("disable");
        return write(
            [param, disable](sql::connection& db) {
                return auth::set_disabled(db, param, disable, now_ms());
            },
            [ctx](const auth::user& u) { ctx->send(json_response(200, user_json(u))); });
    }
    if (label == "/v1/admin/enrolment-codes") {
        std::string username(str_field(body, "username"));
        std::int64_t minutes = 30;
        if (const auto* t = body.if_contains("ttl_minutes"); t && !t->is_null()) {
            // Checked before multiplying (fuzz_http: a huge value overflowed minutes * 60000).
            if (!t->is_int64() || t->as_int64() < 1 || t->as_int64() > 7 * 24 * 60)
                return ctx->fail(400, "invalid_argument",
                                 "\"ttl_minutes\" must be a whole number from 1 to 10080 (7 days)");
            minutes = t->as_int64();
        }
        return write(
            [username, minutes](sql::connection& db) {
                return auth::create_enrolment_code(db, username, minutes * 60000, now_ms());
            },
            [this, ctx, username](const auth::enrolment_code& code) {
                // What `fieldsync tablets code --server URL` draws: the tablet app scans it. The
                // server is the configured web origin, else the address the admin's page used.
                std::string qr_text = "fieldsync:enrol?code=" + code.code;
                if (!cfg_.web_origin.empty())
                    qr_text += "&server=" + cfg_.web_origin;
                else if (!ctx->req.host.empty())
                    qr_text += "&server=https://" + ctx->req.host;
                ctx->send(json_response(201, json::object{{"code", code.code},
                                                          {"username", username},
                                                          {"expires_ms", code.expires_ms},
                                                          {"qr_text", qr_text},
                                                          {"qr_svg", qr_svg(qr_text)}}));
            });
    }
    if (label == "/v1/admin/devices/:id/revoke") {
        return write(
            [param](sql::connection& db) { return auth::revoke_device(db, param, now_ms()); },
            [ctx](const auth::device_info& d) { ctx->send(json_response(200, device_json(d))); });
    }
    ctx->fail(404, "not_found", "no such endpoint");
}

// POST /v1/session: username and password for a session cookie (township heads and admins).
void api::login(std::shared_ptr<context> ctx) {
    if (!ctx->req.origin.empty() &&
        !web::same_origin(ctx->req.origin, ctx->req.host, cfg_.web_origin))
        return ctx->fail(403, "csrf", "log in from this server's own page");
    std::string username(str_field(ctx->body, "username"));
    std::string password(str_field(ctx->body, "password"));
    ctx->body = {};
    if (username.empty() || password.empty() || username.size() > 200 || password.size() > 1024)
        return ctx->fail(400, "invalid_argument", "give \"username\" and \"password\"");
    // A browser that logged in as this user before is held back only by its own failures.
    std::string browser = web::known_browser_of(
        known_key_, web::cookie_value(ctx->req.cookie, web::known_cookie_name), username);
    if (auto wait = logins_->wait_ms(username, ctx->req.client_address, browser, now_ms());
        wait > 0) {
        auto secs = (wait + 999) / 1000;
        auto line = login_line("login_throttled", ctx->req, std::nullopt);
        line.erase("user_unknown");
        line["retry_after_s"] = secs;
        if (!browser.empty())
            line["known_browser"] = true;
        log_event(std::move(line));
        http_response res = error_response(429, "rate_limited",
                                           "too many failed logins; try again in " +
                                               std::to_string(secs) + " seconds");
        res.headers.emplace_back("Retry-After", std::to_string(secs));
        ctx->facts.error = "rate_limited";
        return ctx->send(std::move(res));
    }
    readers_.submit([this, ctx, username, password, browser](sql::connection& c) {
        try {
            // Checked whether or not the user exists (verify_login spends the same time), so the
            // answer and its timing say nothing about which usernames exist.
            bool ok = auth::verify_login(c, username, password);
            auto u = auth::find_user(c, username);
            if (!ok || !u) {
                auto line = login_line("login_failed", ctx->req, u);
                line["failures"] =
                    logins_->failed(username, ctx->req.client_address, browser, now_ms());
                if (!browser.empty())
                    line["known_browser"] = true;
                log_event(std::move(line));
                return ctx->fail(401, "bad_login", "wrong username or password");
            }
            ctx->facts.user = u->username;
            if (u->role == auth::role::field_worker)
                return ctx->fail(403, "forbidden",
                                 "field workers use the tablet; the web page is for township "
                                 "heads and district admins");
            logins_->succeeded(username, browser);
            web::session_limits limits{cfg_.session_idle_s * 1000, cfg_.session_max_s * 1000};
            auto made = std::make_shared<web::new_session>();
            auto user = std::move(*u);
            writer_.submit(
                [made, name = user.username, limits](sql::connection& db) {
                    *made = web::create_session(db, name, now_ms(), limits);
                },
                [this, ctx, made, user](boost::system::error_code ec) {
                    if (ec == errc::unsupported)
                        return ctx->fail(503, "shutting_down", "the server is stopping");
                    if (ec || made->cookie.empty())
                        return ctx->fail(503, "storage_failure", "not logged in; try again");
                    web::session_info info;
                    info.user = user;
                    info.csrf_token = made->csrf_token;
                    info.expires_ms = made->expires_ms;
                    auto res =
                        json_response(200, session_json(info, engine_.clock().now().to_string()));
                    res.headers.emplace_back(
                        "Set-Cookie", web::set_cookie_header(made->cookie, cfg_.session_max_s));
                    res.headers.emplace_back(
                        "Set-Cookie", web::set_known_cookie_header(
                                          web::make_known_browser(known_key_, user.username)));
                    auto line = login_line("login", ctx->req, user);
                    line["level"] = "info";
                    log_event(std::move(line));
                    ctx->send(std::move(res));
                });
        } catch (const std::exception& e) {
            ctx->read_failed(e);
        }
    });
}

// Resolves the fs_session cookie on a reader: the session's user becomes the caller, exactly as
// a bearer token of that user would. Requests that change something must come from this
// server's page: X-CSRF-Token equal to the session's token, and no foreign Origin.
bool api::authenticate_session(const std::shared_ptr<context>& ctx, sql::connection& c,
                               const std::string& cookie) {
    web::session_limits limits{cfg_.session_idle_s * 1000, cfg_.session_max_s * 1000};
    const auto now = now_ms();
    std::string expired;
    auto found = web::find_session(c, cookie, now, limits, &expired);
    if (!found) {
        if (!expired.empty())
            writer_.submit([expired](sql::connection& db) { web::end_session(db, expired); },
                           [](boost::system::error_code) {});
        http_response res =
            error_response(status_of(found.error.code), found.error.wire_code, found.error.message);
        res.headers.emplace_back("Set-Cookie", web::set_cookie_header("", 0));
        ctx->facts.error = found.error.wire_code;
        ctx->send(std::move(res));
        return false;
    }
    auto& info = *found.value;
    ctx->facts.user = info.user.username;
    if (info.user.role == auth::role::field_worker) {
        ctx->fail(403, "forbidden", "the web page is for township heads and district admins");
        return false;
    }
    if (ctx->req.method != method::get) {
        const bool foreign = !ctx->req.origin.empty() &&
                             !web::same_origin(ctx->req.origin, ctx->req.host, cfg_.web_origin);
        if (foreign || !web::secrets_equal(ctx->req.csrf_token, info.csrf_token)) {
            log_event({{"event", "csrf_refused"},
                       {"request_id", ctx->req.request_id},
                       {"client", ctx->req.client_address},
                       {"user", info.user.username},
                       {"route", ctx->facts.route},
                       {"reason", foreign ? "origin" : "token"}});
            ctx->fail(403, "csrf",
                      foreign ? "the request came from another site"
                              : "send the session's CSRF token in the X-CSRF-Token header");
            return false;
        }
    }
    // The idle clock moves on with use; written at most every so often, not on every request.
    if (now - info.last_seen_ms >= std::min<std::int64_t>(60000, limits.idle_ms / 10)) {
        auto hash = info.cookie_hash;
        writer_.submit([hash, now](sql::connection& db) { web::touch_session(db, hash, now); },
                       [](boost::system::error_code) {});
    }
    ctx->id.who.user = info.user.username;
    ctx->id.who.device = "web";
    ctx->id.who.where = info.user.scope();
    ctx->id.role = info.user.role;
    ctx->session = std::move(info);
    return true;
}

void api::record(const http_request& req, const http_response& res, const request_facts& f) {
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - req.started).count();
    metrics_.request(f.route, res.status, seconds);
    if (!cfg_.log_requests)
        return;
    json::object line{{"ts", iso_time(now_ms())},
                      {"request_id", req.request_id},
                      {"method", req.method == method::get    ? "GET"
                                 : req.method == method::post ? "POST"
                                                              : "OTHER"},
                      {"route", f.route},
                      {"status", res.status}};
    if (!f.user.empty())
        line["user"] = f.user;
    if (!f.device.empty())
        line["device"] = f.device;
    if (!f.error.empty())
        line["error"] = f.error;
    if (f.route == "/v1/sync/push" && res.status == 200)
        line["mutations"] = json::object{{"applied", f.applied},
                                         {"rejected", f.rejected},
                                         {"duplicate", f.duplicates},
                                         {"conflicts", f.conflicts}};
    if (f.route == "/v1/sync/pull" && res.status == 200)
        line["changes"] = f.changes;
    // Boost.JSON writes doubles as 1.5E0; a log reader wants plain milliseconds.
    std::string text = json::serialize(line);
    char duration[48];
    std::snprintf(duration, sizeof duration, ",\"duration_ms\":%.3f}", seconds * 1000);
    text.pop_back();
    text += duration;
    std::lock_guard lock(log_mutex);
    std::cerr << text << "\n";
}

void api::record_transport_error(std::string_view request_id, unsigned status,
                                 std::string_view code) {
    metrics_.request("transport", status, 0);
    if (!cfg_.log_requests)
        return;
    std::string text = json::serialize(json::object{{"ts", iso_time(now_ms())},
                                                    {"request_id", request_id},
                                                    {"route", "transport"},
                                                    {"status", status},
                                                    {"error", code}});
    std::lock_guard lock(log_mutex);
    std::cerr << text << "\n";
}

} // namespace fieldsync::server
