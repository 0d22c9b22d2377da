// Who may do what: each role × each endpoint × own / other township / no token / revoked token.
#include "server_fixture.hpp"

#include <boost/json/serialize.hpp>

#include <gtest/gtest.h>

#include <map>

namespace fieldsync {
namespace {

using namespace fieldsync::testing;
namespace json = boost::json;

struct matrix_fixture : ::testing::Test {
    static void SetUpTestSuite() {
        server = new server_fixture();
        for (const char* u : {"fw_a", "fw_a1", "fw_b", "head_a", "admin"})
            logins[u] = server->enrol(u);
        auto revoked = server->enrol("fw_a");
        sql::connection db(server->dir.file("fieldsync.db"), sql::open_mode::read_write);
        sql::transaction tx(db);
        sql::statement s(db.handle(), "UPDATE devices SET revoked_ms = 1 WHERE device = ?");
        s.bind(1, std::string_view(revoked.device));
        s.run();
        tx.commit();
        logins["revoked"] = revoked;
        logins["none"] = {"", "", ""};
    }
    static void TearDownTestSuite() {
        delete server;
        server = nullptr;
        logins.clear();
        replicas.clear();
    }

    // A one-mutation push of a new record in `township` by `who`'s device.
    http_reply push_into(const std::string& who, const char* township, const char* village) {
        // One replica per tablet, so that its mutation numbers continue (a fresh replica would
        // resend number 1 and get the first answer again).
        const auto& l = logins[who];
        auto& r = replicas[who];
        if (!r)
            r = std::make_unique<replica>(":memory:", test_catalog(),
                                          l.device.empty() ? "nobody" : l.device);
        (void)r->create("item", item("x", township, village));
        auto req = r->next_push();
        auto reply = server->client()->post("/v1/sync/push", encode(req), l.token);
        if (reply.status == 200)
            r->apply_push_result(req, *decode_push_result(reply.json));
        return reply;
    }
    http_reply pull(const std::string& who, const char* township = nullptr) {
        json::object body{{"cursor", nullptr}};
        if (township)
            body["township"] = township;
        return server->client()->post("/v1/sync/pull", body, logins[who].token);
    }
    http_reply admin_list(const std::string& who) {
        return server->client()->get("/v1/admin/users", logins[who].token);
    }

    static server_fixture* server;
    static std::map<std::string, tablet_login> logins;
    static std::map<std::string, std::unique_ptr<replica>> replicas;
};
server_fixture* matrix_fixture::server = nullptr;
std::map<std::string, tablet_login> matrix_fixture::logins;
std::map<std::string, std::unique_ptr<replica>> matrix_fixture::replicas;

std::string first_ack_status(const http_reply& r) {
    return std::string(r.json.at("acks").as_array().at(0).at("status").as_string());
}
std::string first_ack_code(const http_reply& r) {
    const auto& a = r.json.at("acks").as_array().at(0).as_object();
    return a.contains("code") ? std::string(a.at("code").as_string()) : "";
}

TEST_F(matrix_fixture, no_token_is_401_everywhere_that_needs_one) {
    for (auto* r : {"/v1/sync/push", "/v1/sync/pull"}) {
        auto reply = server->client()->post(r, json::value{{"cursor", nullptr}});
        EXPECT_EQ(reply.status, 401u) << r;
        EXPECT_EQ(reply.error_code(), "unauthorized");
    }
    for (auto* r : {"/v1/admin/users", "/v1/admin/devices", "/v1/me"})
        EXPECT_EQ(server->client()->get(r).status, 401u) << r;
    EXPECT_EQ(server->client()->get("/v1/me", "fst_not-a-real-token").error_code(), "unauthorized");
    // Public endpoints.
    EXPECT_EQ(server->client()->get("/v1/healthz").status, 200u);
    EXPECT_EQ(server->client()->get("/metrics").status, 200u);
}

TEST_F(matrix_fixture, revoked_tablet_gets_401_device_revoked_everywhere) {
    EXPECT_EQ(push_into("revoked", town_a, village_a1).error_code(), "device_revoked");
    EXPECT_EQ(pull("revoked").status, 401u);
    EXPECT_EQ(pull("revoked").error_code(), "device_revoked");
    EXPECT_EQ(admin_list("revoked").error_code(), "device_revoked");
    // The user's other tablet is not affected.
    EXPECT_EQ(pull("fw_a").status, 200u);
}

TEST_F(matrix_fixture, field_worker_pushes_own_township_only) {
    auto own = push_into("fw_a", town_a, village_a1);
    ASSERT_EQ(own.status, 200u) << own.body;
    EXPECT_EQ(first_ack_status(own), "applied");
    auto other = push_into("fw_a", town_b, village_b1);
    ASSERT_EQ(other.status, 200u);
    EXPECT_EQ(first_ack_status(other), "rejected");
    EXPECT_EQ(first_ack_code(other), "out_of_scope");
    auto b = push_into("fw_b", town_b, village_b1);
    EXPECT_EQ(first_ack_status(b), "applied");
    // A village-scoped worker: their village only.
    EXPECT_EQ(first_ack_status(push_into("fw_a1", town_a, village_a1)), "applied");
    EXPECT_EQ(first_ack_code(push_into("fw_a1", town_a, village_a2)), "out_of_scope");
}

TEST_F(matrix_fixture, only_field_workers_push) {
    for (const char* who : {"head_a", "admin"}) {
        auto r = push_into(who, town_a, village_a1);
        EXPECT_EQ(r.status, 403u) << who;
        EXPECT_EQ(r.error_code(), "forbidden");
    }
}

TEST_F(matrix_fixture, pulls_stay_inside_the_scope) {
    ASSERT_EQ(first_ack_status(push_into("fw_a", town_a, village_a2)), "applied");
    ASSERT_EQ(first_ack_status(push_into("fw_b", town_b, village_b1)), "applied");
    auto townships_in = [](const http_reply& r) {
        std::set<std::string> out;
        for (const auto& ch : r.json.at("changes").as_array())
            out.insert(std::string(ch.at("fields").at("township").as_string()));
        return out;
    };
    for (const char* who : {"fw_a", "head_a"}) {
        auto own = pull(who);
        ASSERT_EQ(own.status, 200u);
        EXPECT_EQ(townships_in(own), std::set<std::string>{town_a}) << who;
        EXPECT_EQ(pull(who, town_a).status, 200u) << who;
        auto other = pull(who, town_b);
        EXPECT_EQ(other.status, 403u) << who;
        EXPECT_EQ(other.error_code(), "forbidden");
    }
    auto b = pull("fw_b");
    EXPECT_EQ(townships_in(b), std::set<std::string>{town_b});
    // A village-scoped worker sees their village only.
    auto a1 = pull("fw_a1");
    for (const auto& ch : a1.json.at("changes").as_array())
        EXPECT_EQ(ch.at("fields").at("village").as_string(), village_a1);
    // The district admin sees both, and may narrow to either township.
    auto all = pull("admin");
    EXPECT_EQ(townships_in(all), (std::set<std::string>{town_a, town_b}));
    EXPECT_EQ(townships_in(pull("admin", town_b)), std::set<std::string>{town_b});
}

TEST_F(matrix_fixture, admin_endpoints_are_for_district_admins) {
    for (const char* who : {"fw_a", "fw_b", "head_a"}) {
        auto r = admin_list(who);
        EXPECT_EQ(r.status, 403u) << who;
        EXPECT_EQ(r.error_code(), "forbidden");
        auto code = server->client()->post("/v1/admin/enrolment-codes",
                                           json::value{{"username", "fw_a"}}, logins[who].token);
        EXPECT_EQ(code.status, 403u) << who;
    }
    auto users = admin_list("admin");
    ASSERT_EQ(users.status, 200u);
    EXPECT_EQ(users.json.at("users").as_array().size(), 6u);
    EXPECT_EQ(server->client()->get("/v1/admin/devices", logins["admin"].token).status, 200u);
}

TEST_F(matrix_fixture, admin_api_makes_users_codes_and_revokes_tablets) {
    const auto& token = logins["admin"].token;
    auto c = server->client();
    auto made = c->post("/v1/admin/users",
                        json::value{{"username", "li"},
                                    {"role", "field_worker"},
                                    {"township", town_b},
                                    {"villages", json::array{village_b1}}},
                        token);
    ASSERT_EQ(made.status, 201u) << made.body;
    auto dup = c->post(
        "/v1/admin/users",
        json::value{{"username", "li"}, {"role", "field_worker"}, {"township", town_b}}, token);
    EXPECT_EQ(dup.status, 409u);
    EXPECT_EQ(dup.error_code(), "user_exists");
    auto code = c->post("/v1/admin/enrolment-codes", json::value{{"username", "li"}}, token);
    ASSERT_EQ(code.status, 201u) << code.body;
    auto e = c->post("/v1/enrol", json::value{{"code", code.json.at("code")}});
    ASSERT_EQ(e.status, 200u) << e.body;
    std::string li_token(e.json.at("token").as_string());
    std::string li_device(e.json.at("device").as_string());
    EXPECT_EQ(c->get("/v1/me", li_token).json.at("scope").at("township").as_string(), town_b);
    auto rev = c->post("/v1/admin/devices/" + li_device + "/revoke", json::object{}, token);
    ASSERT_EQ(rev.status, 200u) << rev.body;
    EXPECT_EQ(c->get("/v1/me", li_token).error_code(), "device_revoked");
    auto dis = c->post("/v1/admin/users/li/disable", json::object{}, token);
    EXPECT_EQ(dis.status, 200u);
    EXPECT_TRUE(dis.json.at("disabled").as_bool());
    EXPECT_EQ(c->post("/v1/admin/users/nobody/disable", json::object{}, token).status, 404u);
}

} // namespace
} // namespace fieldsync
