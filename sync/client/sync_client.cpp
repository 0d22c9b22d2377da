#include "sync/client/sync_client.hpp"

#include "sync/protocol.hpp"
#include "sync/sqlite.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

namespace fieldsync::client {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace json = boost::json;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;

std::chrono::milliseconds backoff_delay(const backoff_policy& p, int attempt,
                                        std::mt19937_64& rng) {
    auto delay = p.initial.count();
    for (int i = 0; i < attempt && delay < p.max.count(); ++i)
        delay *= 2;
    delay = std::min<std::int64_t>(delay, p.max.count());
    if (delay <= 1)
        return std::chrono::milliseconds(delay);
    // Jitter: many tablets coming back into signal at once (the township office's Wi-Fi at 9am)
    // must not retry in lock-step.
    std::uniform_int_distribution<std::int64_t> d(delay / 2, delay);
    return std::chrono::milliseconds(d(rng));
}

std::string normalise_fingerprint(std::string_view s) {
    std::string out;
    for (char ch : s) {
        if (ch == ':' || ch == ' ')
            continue;
        if (!std::isxdigit(static_cast<unsigned char>(ch)))
            return {};
        out += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
    return out.size() == 64 ? out : std::string{};
}

std::string_view to_string(record_state s) noexcept {
    switch (s) {
    case record_state::rejected:
        return "rejected";
    case record_state::conflict:
        return "conflict";
    case record_state::returned:
        return "returned";
    case record_state::pending:
        return "pending";
    case record_state::synced:
        return "synced";
    }
    return "synced";
}

std::string_view to_string(sync_outcome o) noexcept {
    switch (o) {
    case sync_outcome::complete:
        return "complete";
    case sync_outcome::offline:
        return "offline";
    case sync_outcome::revoked:
        return "revoked";
    case sync_outcome::unauthorized:
        return "unauthorized";
    case sync_outcome::user_disabled:
        return "user_disabled";
    case sync_outcome::refused:
        return "refused";
    }
    return "refused";
}

namespace {

struct url_parts {
    std::string host;
    std::string port;
};

std::optional<url_parts> parse_url(const std::string& url) {
    const std::string scheme = "https://";
    if (url.rfind(scheme, 0) != 0)
        return std::nullopt;
    std::string rest = url.substr(scheme.size());
    if (auto slash = rest.find('/'); slash != std::string::npos)
        rest = rest.substr(0, slash);
    url_parts p;
    if (!rest.empty() && rest[0] == '[') { // [::1]:8443
        auto close = rest.find(']');
        if (close == std::string::npos)
            return std::nullopt;
        p.host = rest.substr(1, close - 1);
        if (close + 1 < rest.size() && rest[close + 1] == ':')
            p.port = rest.substr(close + 2);
    } else if (auto colon = rest.rfind(':'); colon != std::string::npos) {
        p.host = rest.substr(0, colon);
        p.port = rest.substr(colon + 1);
    } else {
        p.host = rest;
    }
    if (p.port.empty())
        p.port = "443";
    if (p.host.empty() || !std::all_of(p.port.begin(), p.port.end(), [](char c) {
            return std::isdigit(static_cast<unsigned char>(c));
        }))
        return std::nullopt;
    return p;
}

std::string sha256_of(X509* cert) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (X509_digest(cert, EVP_sha256(), md, &n) != 1)
        return {};
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < n; ++i) {
        out += hex[md[i] >> 4];
        out += hex[md[i] & 15];
    }
    return out;
}

struct reply {
    unsigned status = 0; // 0: no answer (network failure)
    std::string body;
    json::value json;
    std::string error_code; // error.code of an error body
    std::string network_error;
};

} // namespace

// One keep-alive HTTPS connection on a private io_context. Every operation is asynchronous
// under a tcp_stream deadline and run to completion here, which gives blocking calls with
// timeouts. Any failure drops the connection; the next request reconnects.
struct sync_client::transport {
    transport(const enrolment& id, const options& o)
        : ctx(ssl::context::tls_client), pin(id.pin), timeout(o.timeout) {
        if (auto p = parse_url(id.server)) {
            host = p->host;
            port = p->port;
        }
        ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                        ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
        ctx.set_verify_mode(ssl::verify_peer);
        if (!pin.empty()) {
            // Pinning replaces the CA check: the certificate the server shows must be this
            // one, whoever issued it (the self-signed development certificate, a district CA).
            ctx.set_verify_callback([this](bool, ssl::verify_context& v) {
                X509_STORE_CTX* sctx = v.native_handle();
                if (X509_STORE_CTX_get_error_depth(sctx) > 0)
                    return true;
                X509* cert = X509_STORE_CTX_get_current_cert(sctx);
                return cert && sha256_of(cert) == pin;
            });
        } else {
            boost::system::error_code ec;
            if (!o.ca_file.empty())
                ctx.load_verify_file(o.ca_file, ec);
            else
                ctx.set_default_verify_paths(ec);
            ctx.set_verify_callback(ssl::host_name_verification(host));
        }
    }

    ~transport() { drop(); }

    template <class Start>
    beast::error_code run(Start start) {
        beast::error_code result = asio::error::would_block;
        start([&result](beast::error_code ec, auto&&...) { result = ec; });
        ioc.restart();
        ioc.run();
        return result;
    }

    void drop() {
        if (stream) {
            beast::error_code ignored;
            beast::get_lowest_layer(*stream).socket().close(ignored);
            stream.reset();
        }
    }

    beast::error_code connect() {
        if (host.empty())
            return asio::error::invalid_argument;
        stream.emplace(ioc, ctx);
        tcp::resolver resolver(ioc);
        beast::error_code ec;
        auto endpoints = resolver.resolve(host, port, ec);
        if (ec)
            return ec;
        auto& tcp_layer = beast::get_lowest_layer(*stream);
        tcp_layer.expires_after(timeout);
        ec = run([&](auto handler) { tcp_layer.async_connect(endpoints, handler); });
        if (ec)
            return ec;
        boost::system::error_code bad;
        asio::ip::make_address(host, bad);
        if (bad) // a name, not an address: send SNI
            SSL_set_tlsext_host_name(stream->native_handle(), host.c_str());
        tcp_layer.expires_after(timeout);
        return run(
            [&](auto handler) { stream->async_handshake(ssl::stream_base::client, handler); });
    }

    reply request(http::verb verb, const std::string& target, const std::string& body,
                  const std::string& token) {
        reply out;
        beast::error_code ec;
        if (!stream)
            ec = connect();
        if (!ec) {
            http::request<http::string_body> req{verb, target, 11};
            req.set(http::field::host, host);
            req.set(http::field::user_agent, "fieldsync-client/1");
            if (!token.empty())
                req.set(http::field::authorization, "Bearer " + token);
            if (verb == http::verb::post) {
                req.set(http::field::content_type, "application/json");
                req.body() = body;
            }
            req.keep_alive(true);
            req.prepare_payload();
            auto& tcp_layer = beast::get_lowest_layer(*stream);
            tcp_layer.expires_after(timeout);
            ec = run([&](auto handler) { http::async_write(*stream, req, handler); });
            if (!ec) {
                http::response_parser<http::string_body> parser;
                parser.body_limit(std::uint64_t{256} << 20);
                beast::flat_buffer buffer;
                tcp_layer.expires_after(timeout);
                ec = run([&](auto handler) { http::async_read(*stream, buffer, parser, handler); });
                if (!ec) {
                    auto res = parser.release();
                    out.status = res.result_int();
                    out.body = std::move(res.body());
                    if (!res.keep_alive())
                        drop();
                }
            }
        }
        if (ec) {
            drop();
            out.status = 0;
            out.network_error = ec.message();
            return out;
        }
        boost::system::error_code jec;
        out.json = json::parse(out.body, jec);
        if (jec)
            out.json = nullptr;
        if (const auto* o = out.json.if_object())
            if (const auto* e = o->if_contains("error"); e && e->is_object())
                if (const auto* c = e->as_object().if_contains("code"); c && c->is_string())
                    out.error_code = std::string(c->as_string());
        return out;
    }

    asio::io_context ioc;
    ssl::context ctx;
    std::optional<beast::ssl_stream<beast::tcp_stream>> stream;
    std::string host, port;
    std::string pin;
    std::chrono::milliseconds timeout;
};

namespace {

const char* enrolment_file = "enrolment.json";

json::object to_json(const enrolment& e) {
    return {{"server", e.server}, {"device", e.device},     {"token", e.token}, {"user", e.user},
            {"role", e.role},     {"township", e.township}, {"pin", e.pin}};
}

std::optional<enrolment> read_enrolment(const fs::path& file) {
    std::ifstream in(file);
    if (!in)
        return std::nullopt;
    std::stringstream ss;
    ss << in.rdbuf();
    boost::system::error_code ec;
    auto v = json::parse(ss.str(), ec);
    if (ec || !v.is_object())
        return std::nullopt;
    auto text = [&](const char* k) {
        const auto* f = v.as_object().if_contains(k);
        return f && f->is_string() ? std::string(f->as_string()) : std::string();
    };
    enrolment e{text("server"), text("device"),   text("token"), text("user"),
                text("role"),   text("township"), text("pin")};
    if (e.device.empty() || e.server.empty())
        return std::nullopt;
    return e;
}

void write_private_file(const fs::path& file, const std::string& text) {
    fs::path tmp = file;
    tmp += ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        fs::permissions(tmp, fs::perms::owner_read | fs::perms::owner_write);
        out << text;
        out.flush();
        if (!out)
            throw std::runtime_error("cannot write " + tmp.string());
    }
    fs::rename(tmp, file);
}

void ensure_rejected_table(sql::connection& c) {
    // Payloads of the device's own rejected edits. The replica drops a rejected mutation from
    // its outbox; a new record whose creation was rejected would vanish from the worker's
    // list, so the client keeps it here until a later edit of that record is accepted.
    c.exec("CREATE TABLE IF NOT EXISTS client_rejected (id BLOB PRIMARY KEY, collection TEXT "
           "NOT NULL, fields TEXT NOT NULL, seq INTEGER NOT NULL) STRICT");
}

} // namespace

sync_client::sync_client(options opts, enrolment id)
    : opts_(std::move(opts)), id_(std::move(id)),
      replica_path_((fs::path(opts_.state_dir) / "replica.db").string()), rng_(opts_.seed) {
    if (!opts_.collections)
        opts_.collections = &catalog::builtin();
    if (!opts_.sleep)
        opts_.sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
    replica_ = std::make_unique<replica>(replica_path_, *opts_.collections, id_.device, opts_.wall,
                                         opts_.seed);
    ensure_rejected_table(replica_->db());
    net_ = std::make_unique<transport>(id_, opts_);
}

sync_client::~sync_client() = default;

result<std::unique_ptr<sync_client>> sync_client::open(options opts, std::string* why) {
    auto e = read_enrolment(fs::path(opts.state_dir) / enrolment_file);
    if (!e) {
        if (why)
            *why = "no enrolment in " + opts.state_dir + " (enrol first)";
        return errc::not_found;
    }
    return std::unique_ptr<sync_client>(new sync_client(std::move(opts), std::move(*e)));
}

result<std::unique_ptr<sync_client>>
sync_client::enrol(options opts, const std::string& server, const std::string& code,
                   const std::string& pin, const std::string& label, std::string* why) {
    auto fail = [&](errc e, std::string text) -> result<std::unique_ptr<sync_client>> {
        if (why)
            *why = std::move(text);
        return e;
    };
    if (!parse_url(server))
        return fail(errc::invalid_argument, "the server must be https://HOST[:PORT]");
    enrolment e;
    e.server = server;
    if (!pin.empty()) {
        e.pin = normalise_fingerprint(pin);
        if (e.pin.empty())
            return fail(errc::invalid_argument, "the pin must be a SHA-256 fingerprint");
    }
    fs::path dir(opts.state_dir);
    std::error_code fec;
    fs::create_directories(dir, fec);
    if (fs::exists(dir / enrolment_file))
        return fail(errc::invalid_argument, opts.state_dir + " already holds an enrolment");
    if (fs::exists(dir / "replica.db"))
        return fail(errc::invalid_argument,
                    opts.state_dir + " holds another tablet's replica; use an empty folder");

    transport net(e, opts);
    json::object body{{"code", code}};
    if (!label.empty())
        body["label"] = label;
    auto r = net.request(http::verb::post, "/v1/enrol", json::serialize(body), {});
    if (r.status == 0)
        return fail(errc::unsupported, "cannot reach " + server + ": " + r.network_error);
    if (r.status == 429)
        return fail(errc::rate_limited, "too many failed enrolments; wait a minute");
    if (r.status == 401)
        return fail(errc::unauthorized, "the enrolment code is unknown, used or expired");
    if (r.status != 200 || !r.json.is_object())
        return fail(errc::invalid_argument,
                    "enrolment refused: HTTP " + std::to_string(r.status) + " " + r.body);
    const auto& o = r.json.as_object();
    auto text = [&](const char* k) {
        const auto* f = o.if_contains(k);
        return f && f->is_string() ? std::string(f->as_string()) : std::string();
    };
    e.device = text("device");
    e.token = text("token");
    e.user = text("user");
    e.role = text("role");
    if (const auto* s = o.if_contains("scope"); s && s->is_object())
        if (const auto* t = s->as_object().if_contains("township"); t && t->is_string())
            e.township = std::string(t->as_string());
    if (e.device.empty() || e.token.empty())
        return fail(errc::invalid_argument, "the server's enrolment answer has no device/token");
    write_private_file(dir / enrolment_file, json::serialize(to_json(e)));
    auto client = std::unique_ptr<sync_client>(new sync_client(std::move(opts), std::move(e)));
    if (auto h = hlc::parse(text("server_clock")))
        client->replica_->clock().observe(*h);
    return client;
}

result<uuid> sync_client::create(std::string_view collection, const json::object& fields) {
    if (!enrolled_)
        return errc::device_revoked;
    return replica_->create(collection, fields);
}

result<void> sync_client::update(const uuid& id, const json::object& fields) {
    if (!enrolled_)
        return errc::device_revoked;
    return replica_->update(id, fields);
}

result<void> sync_client::remove(const uuid& id) {
    if (!enrolled_)
        return errc::device_revoked;
    return replica_->remove(id);
}

void sync_client::remember_rejections(const push_request& sent, const push_result& res) {
    auto& db = replica_->db();
    sql::transaction tx(db);
    for (const auto& ack : res.acks) {
        auto m = std::find_if(sent.mutations.begin(), sent.mutations.end(),
                              [&](const mutation& x) { return x.seq == ack.seq; });
        if (m == sent.mutations.end())
            continue;
        if (ack.status == ack_status::rejected) {
            json::object values;
            for (const auto& [name, w] : m->fields)
                values[name] = w.value;
            auto s = db.cached("INSERT INTO client_rejected(id, collection, fields, seq) "
                               "VALUES(?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                               "fields = excluded.fields, seq = excluded.seq");
            s->bind_all(m->id.span(), m->collection, json::serialize(values),
                        static_cast<std::int64_t>(m->seq));
            s->run();
        } else if (ack.status == ack_status::applied) {
            auto s = db.cached("DELETE FROM client_rejected WHERE id = ? AND seq < ?");
            s->bind_all(m->id.span(), static_cast<std::int64_t>(m->seq));
            s->run();
        }
    }
    tx.commit();
}

void sync_client::forget_after_revocation() {
    enrolled_ = false;
    replica_->db().exec("DELETE FROM client_rejected");
    replica_->wipe();
    // The replica runs in WAL mode: frames written before the wipe may still hold personal
    // data in replica.db-wal until a checkpoint truncates it.
    replica_->db().exec("PRAGMA wal_checkpoint(TRUNCATE)");
    std::error_code ec;
    fs::remove(fs::path(opts_.state_dir) / enrolment_file, ec);
    id_.token.clear();
}

namespace {

enum class verdict { ok, retry, smaller_batch, bad_cursor, stop };

struct judged {
    verdict v = verdict::ok;
    sync_outcome outcome = sync_outcome::complete;
};

judged judge(const reply& r) {
    if (r.status == 200)
        return {verdict::ok, sync_outcome::complete};
    if (r.status == 0 || r.status >= 500 || r.status == 429)
        return {verdict::retry, sync_outcome::offline};
    if (r.status == 413)
        return {verdict::smaller_batch, sync_outcome::refused};
    if (r.status == 400 && r.error_code == "bad_cursor")
        return {verdict::bad_cursor, sync_outcome::refused};
    if (r.status == 401) {
        if (r.error_code == "device_revoked")
            return {verdict::stop, sync_outcome::revoked};
        if (r.error_code == "user_disabled")
            return {verdict::stop, sync_outcome::user_disabled};
        return {verdict::stop, sync_outcome::unauthorized};
    }
    return {verdict::stop, sync_outcome::refused};
}

std::string describe(const reply& r) {
    if (r.status == 0)
        return "network: " + r.network_error;
    return "HTTP " + std::to_string(r.status) + " " + r.body.substr(0, 300);
}

} // namespace

sync_report sync_client::sync(const std::function<void(const sync_progress&)>& progress) {
    sync_report rep;
    if (!enrolled_) {
        rep.outcome = sync_outcome::revoked;
        rep.error = "this tablet was revoked; enrol again";
        return rep;
    }
    sync_progress prog;
    int attempts = 0;
    // Returns false when the sync must end (outcome set).
    auto failed = [&](const reply& r, const judged& j) {
        rep.error = describe(r);
        if (j.v == verdict::retry) {
            if (++attempts >= opts_.backoff.max_attempts) {
                rep.outcome = sync_outcome::offline;
                return false;
            }
            ++rep.retries;
            prog.retry = attempts;
            if (progress)
                progress(prog);
            opts_.sleep(backoff_delay(opts_.backoff, attempts - 1, rng_));
            return true;
        }
        rep.outcome = j.outcome;
        if (j.outcome == sync_outcome::revoked)
            forget_after_revocation();
        return false;
    };

    // Push: the outbox oldest first, in batches, until it is empty.
    std::size_t batch = std::max<std::size_t>(1, opts_.push_batch);
    prog.total = replica_->pending_count();
    int stalled = 0;
    for (int guard = 0; guard < 1'000'000; ++guard) {
        auto req = replica_->next_push(batch);
        if (req.mutations.empty())
            break;
        auto r = net_->request(http::verb::post, "/v1/sync/push", json::serialize(encode(req)),
                               id_.token);
        auto j = judge(r);
        if (j.v == verdict::smaller_batch && batch > 1) {
            batch = std::max<std::size_t>(1, batch / 2);
            continue;
        }
        std::optional<push_result> res;
        if (j.v == verdict::ok) {
            if (auto d = decode_push_result(r.json))
                res = std::move(*d);
            else
                j = {verdict::retry, sync_outcome::offline}; // a garbled answer: ask again
        }
        if (!res) {
            if (!failed(r, j))
                return rep;
            continue;
        }
        attempts = 0;
        prog.retry = 0;
        std::size_t before = replica_->pending_count();
        remember_rejections(req, *res);
        if (replica_->apply_push_result(req, *res)) // the server was restored from a backup
            replica_->db().exec("UPDATE client_rejected SET seq = 0");
        for (const auto& a : res->acks) {
            if (a.status == ack_status::gap) {
                ++rep.gaps;
                continue;
            }
            ++rep.pushed;
            (a.status == ack_status::applied ? rep.applied : rep.rejected) += 1;
            rep.conflicts += a.conflicts.size();
            rep.restamped += a.restamped.size();
        }
        std::size_t after = replica_->pending_count();
        prog.phase = sync_phase::push;
        prog.done += before - std::min(before, after);
        if (progress)
            progress(prog);
        // A gap the replica cannot fill (the server lost numbers it had acknowledged: a
        // restored backup) would loop forever; stop and report it.
        stalled = after < before ? 0 : stalled + 1;
        if (stalled >= 3) {
            rep.outcome = sync_outcome::refused;
            rep.error = "the server asks for mutations this tablet no longer has (last applied " +
                        std::to_string(res->last_applied) + ")";
            return rep;
        }
    }

    // Pull until complete. Each page's cursor is stored with its records, so a dropped
    // connection resumes after the last page applied.
    prog = sync_progress{sync_phase::pull, 0, 0, 0};
    bool cursor_dropped = false;
    attempts = 0;
    for (int guard = 0; guard < 1'000'000; ++guard) {
        auto req = replica_->next_pull(opts_.pull_limit);
        auto r = net_->request(http::verb::post, "/v1/sync/pull", json::serialize(encode(req)),
                               id_.token);
        auto j = judge(r);
        if (j.v == verdict::bad_cursor && !cursor_dropped) {
            // Not issued by this server: start a full download, as after a reset.
            cursor_dropped = true;
            auto& db = replica_->db();
            sql::transaction tx(db);
            db.exec("DELETE FROM records; DELETE FROM meta WHERE key = 'cursor'");
            tx.commit();
            ++rep.resets;
            rep.reset_reason = "bad_cursor";
            continue;
        }
        std::optional<pull_result> res;
        if (j.v == verdict::ok) {
            if (auto d = decode_pull_result(r.json))
                res = std::move(*d);
            else
                j = {verdict::retry, sync_outcome::offline};
        }
        if (!res) {
            if (!failed(r, j))
                return rep;
            continue;
        }
        attempts = 0;
        replica_->apply_pull_result(*res);
        if (res->reset) {
            ++rep.resets;
            rep.reset_reason = res->reset_reason;
        }
        rep.pulled += res->changes.size();
        ++rep.pages;
        prog.done = rep.pulled;
        prog.retry = 0;
        if (progress)
            progress(prog);
        if (res->complete)
            break;
    }
    rep.clock_offset_ms = replica_->clock_offset_ms();
    rep.outcome = sync_outcome::complete;
    return rep;
}

namespace {

record_status status_of(const local_record& r, const std::map<uuid, record_issue>& issues) {
    record_status s;
    s.collection = r.collection;
    s.id = r.id;
    s.fields = r.fields;
    if (auto it = issues.find(r.id); it != issues.end()) {
        s.state = it->second.kind == "rejected" ? record_state::rejected : record_state::conflict;
        s.field = it->second.field;
        s.code = it->second.code;
        s.message = it->second.message;
        return s;
    }
    const auto* review = r.fields.if_contains("_review_state");
    if (review && review->is_string() && review->as_string() == "has_issues") {
        s.state = record_state::returned;
        if (const auto* c = r.fields.if_contains("_review_comment"); c && c->is_string())
            s.message = std::string(c->as_string());
        return s;
    }
    s.state = r.pending ? record_state::pending : record_state::synced;
    return s;
}

} // namespace

std::vector<record_status> sync_client::records(std::string_view collection) {
    std::map<uuid, record_issue> issues;
    for (auto& i : replica_->issues()) {
        auto [it, fresh] = issues.emplace(i.id, i);
        if (!fresh && i.kind == "rejected")
            it->second = i; // a rejection outranks a conflict
    }
    std::vector<record_status> out;
    std::map<uuid, bool> seen;
    for (const auto& r : replica_->list(collection)) {
        seen[r.id] = true;
        out.push_back(status_of(r, issues));
    }
    auto s = replica_->db().cached("SELECT id, collection, fields FROM client_rejected");
    while (s->step()) {
        auto id = uuid::from_blob(s->blob(0));
        if (!id || seen.count(*id) || !(collection.empty() || s->text(1) == collection))
            continue;
        local_record r;
        r.id = *id;
        r.collection = std::string(s->text(1));
        boost::system::error_code ec;
        auto v = json::parse(s->text(2), ec);
        if (!ec && v.is_object())
            r.fields = v.as_object();
        r.fields.erase("_deleted");
        auto st = status_of(r, issues);
        if (st.state != record_state::rejected) // its rejection was superseded
            continue;
        out.push_back(std::move(st));
    }
    return out;
}

std::optional<record_status> sync_client::status(const uuid& id) {
    for (auto& r : records())
        if (r.id == id)
            return r;
    return std::nullopt;
}

status_counts sync_client::counts() {
    status_counts c;
    for (const auto& r : records()) {
        ++c.records;
        switch (r.state) {
        case record_state::rejected:
            ++c.rejected;
            break;
        case record_state::conflict:
            ++c.conflicts;
            break;
        case record_state::returned:
            ++c.returned;
            break;
        case record_state::pending:
            ++c.pending;
            break;
        case record_state::synced:
            ++c.synced;
            break;
        }
    }
    c.outbox = replica_->pending_count();
    return c;
}

} // namespace fieldsync::client
