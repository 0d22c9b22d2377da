// The HTTP target: what a session does with the bytes of a connection (server.cpp), without TLS
// and sockets: Beast's request parser with the server's limits, then server::api::handle with an
// in-process engine, writer and reader pool over a file database. Every request gets exactly one
// answer; its status is one the API documents; error bodies are the documented JSON shape.
//
// Known credentials, so that inputs reach the authenticated endpoints (see corpus/http/):
//   Bearer fst_fuzz_worker   fz1, field worker of 郭家镇 (500154105)
//   Bearer fst_fuzz_village  fz2, field worker of 郭家镇's village 500154105201 only
//   Bearer fst_fuzz_other    fzb, field worker of 温泉镇 (500154106)
//   Bearer fst_fuzz_head     fzh, township head of 郭家镇
//   Bearer fst_fuzz_admin    fza, district admin
//   Bearer fst_fuzz_revoked  fzr, a revoked tablet of fw_a
//   enrolment codes FUZZ-CODE-0001 (valid once), FUZZ-CODE-0002 (expired)
#include "fuzz_env.hpp"
#include "fuzz_targets.hpp"

#include "../server/seed_user.hpp"

#include "schema/catalog.hpp"
#include "schema/rules.hpp"
#include "server/api.hpp"
#include "server/auth.hpp"
#include "server/config.hpp"
#include "server/metrics.hpp"
#include "sync/engine.hpp"
#include "sync/rollups.hpp"
#include "sync/writer.hpp"

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>

namespace fieldsync::fuzz {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
namespace fs = std::filesystem;

server::config fuzz_config(const std::string& dir) {
    server::config cfg;
    cfg.data_dir = dir;
    // Smaller than the defaults (8 MiB, 16 KiB) so that inputs of a few KiB reach the limits;
    // the code paths are the same.
    cfg.max_body_bytes = 16384;
    cfg.max_header_bytes = 4096;
    cfg.log_requests = false;
    return cfg;
}

std::string make_dir() {
    // /dev/shm when there is one: the writer syncs every group.
    fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    std::string tmpl = (base / "fieldsync-fuzz-XXXXXX").string();
    check(mkdtemp(tmpl.data()) != nullptr, "temporary folder");
    return tmpl;
}

sql::connection open_seeded(const std::string& path) {
    sql::connection c = open_fuzz_district(path);
    sql::transaction tx(c);
    using testing::seed_user;
    seed_user(c, fixed_wall_ms, "fw_a", auth::role::field_worker, t105);
    seed_user(c, fixed_wall_ms, "fw_v", auth::role::field_worker, t105, {v105});
    seed_user(c, fixed_wall_ms, "fw_b", auth::role::field_worker, t106);
    seed_user(c, fixed_wall_ms, "head_a", auth::role::township_head, t105);
    seed_user(c, fixed_wall_ms, "admin", auth::role::district_admin, "");
    const char* devices[][3] = {
        {"fz1", "fw_a", "fst_fuzz_worker"}, {"fz2", "fw_v", "fst_fuzz_village"},
        {"fzb", "fw_b", "fst_fuzz_other"},  {"fzh", "head_a", "fst_fuzz_head"},
        {"fza", "admin", "fst_fuzz_admin"}, {"fzr", "fw_a", "fst_fuzz_revoked"}};
    for (const auto& [device, user, token] : devices) {
        sql::statement s(c.handle(), "INSERT INTO devices(device, user, last_seq, token_hash, "
                                     "label, enrolled_ms) VALUES(?, ?, 0, ?, 'fuzz', ?)");
        s.bind_all(device, user, auth::sha256_hex(token), fixed_wall_ms);
        s.run();
    }
    check(static_cast<bool>(auth::revoke_device(c, "fzr", fixed_wall_ms)), "revoke");
    for (const auto& [code, expires] :
         {std::pair{"FUZZ-CODE-0001", std::int64_t{4102444800000}}, // 2100
          std::pair{"FUZZ-CODE-0002", fixed_wall_ms}}) {
        sql::statement s(c.handle(), "INSERT INTO enrolment_codes(code_hash, username, "
                                     "created_ms, expires_ms) VALUES(?, 'fw_a', ?, ?)");
        s.bind_all(auth::sha256_hex(auth::normalize_code(code)), fixed_wall_ms, expires);
        s.run();
    }
    tx.commit();
    return c;
}

struct http_env {
    std::string dir = make_dir();
    server::config cfg = fuzz_config(dir);
    catalog cat = catalog::builtin();
    server::metrics stats;
    rollups monthly;
    std::unique_ptr<engine> eng;
    std::unique_ptr<writer> wr;
    std::unique_ptr<reader_pool> readers;
    std::unique_ptr<server::api> app;

    http_env() {
        auto path = (fs::path(dir) / "fieldsync.db").string();
        auto conn = open_seeded(path);
        eng = std::make_unique<engine>(cat, engine_config{}, conn);
        eng->add_observer(&monthly);
        wr = std::make_unique<writer>(std::move(conn));
        readers = std::make_unique<reader_pool>(path, 2);
        app = std::make_unique<server::api>(cfg, *eng, *wr, *readers, monthly, stats);
    }
    ~http_env() {
        app.reset();
        wr->stop();
        readers->stop();
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
};

http_env& env() {
    static http_env e;
    return e;
}

// Statuses the API documents (docs/protocol.md "Errors"); 500 and 503 are not expected from any
// input while the database is healthy.
const std::set<unsigned> valid_statuses = {200, 201, 400, 401, 403, 404, 405,
                                           409, 413, 415, 422, 429, 431};

void check_response(const server::http_response& res, const server::request_facts& facts) {
    check(valid_statuses.count(res.status) == 1,
          "status " + std::to_string(res.status) + " (" + facts.error + ")");
    bool is_json = res.content_type.starts_with("application/json");
    if (res.status >= 400) {
        check(is_json, "an error answer is JSON");
        auto v = parse_output(res.body, "error body is JSON");
        const auto* o = v.if_object();
        const auto* e = o ? o->if_contains("error") : nullptr;
        check(e && e->is_object(), "error body is {\"error\": {...}}");
        const auto* code = e->as_object().if_contains("code");
        const auto* message = e->as_object().if_contains("message");
        check(code && code->is_string() && !code->as_string().empty(), "error.code is text");
        check(message && message->is_string() && !message->as_string().empty(),
              "error.message is text");
        check(facts.error == code->as_string(), "the log names the error code answered");
    } else if (is_json) {
        parse_output(res.body, "answer is JSON");
    }
}

// Hands one parsed request to the API, as session::on_request does, and waits for the answer.
void serve(http_env& e, http::request<http::string_body>&& req) {
    server::http_request r;
    r.method = req.method() == http::verb::get    ? server::method::get
               : req.method() == http::verb::post ? server::method::post
                                                  : server::method::other;
    r.target = std::string(req.target());
    r.content_type = std::string(req[http::field::content_type]);
    r.authorization = std::string(req[http::field::authorization]);
    r.body = std::move(req.body());
    r.request_id = "fuzz";
    r.started = std::chrono::steady_clock::now();

    std::mutex m;
    std::condition_variable cv;
    int answers = 0;
    server::http_response res;
    server::request_facts facts;
    e.app->handle(std::move(r), [&](server::http_response got, server::request_facts f) {
        std::lock_guard lock(m);
        ++answers;
        res = std::move(got);
        facts = std::move(f);
        cv.notify_all();
    });
    std::unique_lock lock(m);
    // libFuzzer's -timeout catches a request that is never answered.
    cv.wait(lock, [&] { return answers > 0; });
    check(answers == 1, "exactly one answer");
    check_response(res, facts);
}

} // namespace

int fuzz_http(const std::uint8_t* data, std::size_t size) {
    auto& e = env();
    if (size == 0)
        return 0;
    beast::flat_buffer buffer;
    auto in = buffer.prepare(size);
    std::memcpy(in.data(), data, size);
    buffer.commit(size);
    // Like a keep-alive connection: requests one after another until the bytes run out or the
    // parser refuses (the session then answers 413/431/400 itself and closes).
    for (int served = 0; served < 8 && buffer.size() > 0; ++served) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(e.cfg.max_body_bytes);
        parser.header_limit(static_cast<std::uint32_t>(e.cfg.max_header_bytes));
        parser.eager(true);
        beast::error_code ec;
        while (!parser.is_done()) {
            auto used = parser.put(buffer.data(), ec);
            buffer.consume(used);
            if (ec == http::error::need_more || (!ec && used == 0)) {
                // Every byte is in the buffer already: the connection would wait for more,
                // and the end of input closes it.
                ec = {};
                parser.put_eof(ec);
                if (ec || !parser.is_done())
                    return 0;
                break;
            }
            if (ec)
                return 0;
        }
        serve(e, parser.release());
    }
    return 0;
}

} // namespace fieldsync::fuzz
