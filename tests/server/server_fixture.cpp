#include "server_fixture.hpp"

#include "seed_user.hpp"
#include "server/auth.hpp"

#include <boost/json/parse.hpp>

#include <gtest/gtest.h>

namespace fieldsync::testing {

namespace json = boost::json;

void seed_database(const std::string& data_dir) {
    std::filesystem::create_directories(data_dir);
    sql::connection c(data_dir + "/fieldsync.db", sql::open_mode::read_write_create);
    if (!migrate_server_database(c))
        throw std::runtime_error("migration failed");
    sql::transaction tx(c);
    for (const char* code : {"500101", town_a, town_b, village_a1, village_a2, village_b1})
        engine::put_division(c, code, code);
    const std::int64_t now = system_wall_ms();
    seed_user(c, now, "fw_a", auth::role::field_worker, town_a);
    seed_user(c, now, "fw_a2", auth::role::field_worker, town_a);
    seed_user(c, now, "fw_a1", auth::role::field_worker, town_a, {village_a1});
    seed_user(c, now, "fw_b", auth::role::field_worker, town_b);
    seed_user(c, now, "head_a", auth::role::township_head, town_a);
    seed_user(c, now, "admin", auth::role::district_admin, "");
    tx.commit();
}

std::string make_code(const std::string& data_dir, const std::string& username) {
    sql::connection c(data_dir + "/fieldsync.db", sql::open_mode::read_write);
    sql::transaction tx(c);
    auto code = auth::create_enrolment_code(c, username, 10 * 60000, system_wall_ms());
    if (!code)
        throw std::runtime_error("code: " + code.error.message);
    tx.commit();
    return code.value->code;
}

server::config test_config(const std::string& data_dir) {
    server::config cfg;
    cfg.data_dir = data_dir;
    cfg.listen = "127.0.0.1:0";
    cfg.collections_file = std::string(FIELDSYNC_TEST_DATA) + "/test_collections.json";
    cfg.threads = 2;
    cfg.readers = 2;
    cfg.log_requests = false;
    return cfg;
}

server_fixture::server_fixture(std::function<void(server::config&)> tweak) {
    seed_database(dir.path().string());
    auto cfg = test_config(dir.path().string());
    if (tweak)
        tweak(cfg);
    srv = std::make_unique<server::server>(cfg);
    srv->start();
}

server_fixture::~server_fixture() {
    if (srv) // a test may have stopped and dropped it
        srv->stop();
}

std::unique_ptr<https_client> server_fixture::client() const {
    return std::make_unique<https_client>(port(), cert());
}

tablet_login server_fixture::enrol(const std::string& username) const {
    auto code = make_code(dir.path().string(), username);
    auto c = client();
    auto reply = c->post("/v1/enrol", json::value{{"code", code}, {"label", "test tablet"}});
    if (reply.status != 200)
        throw std::runtime_error("enrol " + username + ": " + reply.body);
    const auto& o = reply.json.as_object();
    return {username, std::string(o.at("device").as_string()),
            std::string(o.at("token").as_string())};
}

std::int64_t server_fixture::count(const std::string& sql_text) const {
    sql::connection c(dir.file("fieldsync.db"), sql::open_mode::read_only);
    sql::statement s(c.handle(), sql_text);
    return s.step() ? s.int64(0) : -1;
}

} // namespace fieldsync::testing
