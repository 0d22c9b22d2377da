// An in-process fieldsyncd on 127.0.0.1 with an ephemeral port over real TLS, seeded with the
// test divisions and one user of each role, and helpers to enrol tablets.
#pragma once

#include "https_client.hpp"
#include "server/config.hpp"
#include "server/server.hpp"
#include "sync/test_support.hpp"

#include <functional>
#include <memory>
#include <string>

namespace fieldsync::testing {

struct tablet_login {
    std::string user;
    std::string device;
    std::string token;
};

// Users made by seed_users(): fw_a and fw_a2 (field workers of town_a), fw_a1 (town_a, village
// a1 only), fw_b (town_b), head_a (township head of town_a), admin (district admin).
void seed_database(const std::string& data_dir);
// An enrolment code for `username`, made directly in the database (as `fieldsync tablets code`).
std::string make_code(const std::string& data_dir, const std::string& username);
// The configuration the fixtures use: loopback, ephemeral port, the test collections.
server::config test_config(const std::string& data_dir);

class server_fixture {
public:
    explicit server_fixture(std::function<void(server::config&)> tweak = {});
    ~server_fixture();

    unsigned short port() const { return srv->port(); }
    std::string cert() const { return srv->certificate_file(); }
    std::unique_ptr<https_client> client() const;
    // Enrols a new tablet for `username` through POST /v1/enrol.
    tablet_login enrol(const std::string& username) const;
    std::int64_t count(const std::string& sql_text) const;

    temp_dir dir;
    std::unique_ptr<server::server> srv;
};

} // namespace fieldsync::testing
