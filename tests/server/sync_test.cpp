// Tablets syncing through a real fieldsyncd over TLS on loopback.
#include "server_fixture.hpp"

#include "server/auth.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <thread>

namespace fieldsync {
namespace {

using namespace fieldsync::testing;
namespace json = boost::json;

TEST(server_sync, push_pull_round_trip_between_two_tablets) {
    server_fixture s;
    auto la = s.enrol("fw_a"), lb = s.enrol("fw_a2");
    replica a(":memory:", test_catalog(), la.device);
    replica b(":memory:", test_catalog(), lb.device);
    auto id = *a.create("item", item("张三"));
    auto c = s.client();
    sync_over(*c, a, la.token);
    sync_over(*c, b, lb.token);
    auto got = b.get(id);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->fields.at("name").as_string(), "张三");
    ASSERT_TRUE(b.update(id, {{"count", 7}}));
    sync_over(*c, b, lb.token);
    sync_over(*c, a, la.token);
    EXPECT_EQ(a.get(id)->fields.at("count").as_int64(), 7);
    EXPECT_EQ(a.content_hash(), b.content_hash());
    EXPECT_EQ(a.pending_count(), 0u);
    EXPECT_EQ(s.count("SELECT count(*) FROM records"), 1);
}

TEST(server_sync, every_push_and_pull_answer_carries_the_server_clock) {
    server_fixture s;
    auto l = s.enrol("fw_a");
    replica a(":memory:", test_catalog(), l.device);
    (void)a.create("item", item("李四"));
    auto c = s.client();
    auto push = c->post("/v1/sync/push", encode(a.next_push()), l.token);
    ASSERT_EQ(push.status, 200) << push.body;
    EXPECT_TRUE(push.json.as_object().at("server_clock").is_string());
    auto pull = c->post("/v1/sync/pull", json::value{{"cursor", nullptr}}, l.token);
    ASSERT_EQ(pull.status, 200) << pull.body;
    EXPECT_TRUE(pull.json.as_object().at("server_clock").is_string());
    EXPECT_TRUE(pull.json.as_object().at("complete").as_bool());
}

TEST(server_sync, retry_after_the_connection_is_cut_before_the_ack_applies_once) {
    server_fixture s;
    auto l = s.enrol("fw_a");
    replica a(":memory:", test_catalog(), l.device);
    for (int i = 0; i < 5; ++i)
        (void)a.create("item", item("r" + std::to_string(i)));
    (void)a.create("item", {{"township", town_a}, {"name", 5}}); // rejected: wrong type
    auto req = a.next_push();
    std::string body = json::serialize(encode(req));
    {
        auto c = s.client();
        c->send_raw("POST /v1/sync/push HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                    "application/json\r\nAuthorization: Bearer " +
                    l.token + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
                    body);
        c->cut(); // the tablet loses signal before the acknowledgement arrives
    }
    // The tablet retries the same mutations on a new connection, maybe before the first push
    // committed, maybe after: either way each is applied exactly once, with the same answer.
    auto c = s.client();
    auto first = c->post("/v1/sync/push", body, l.token);
    ASSERT_EQ(first.status, 200) << first.body;
    auto again = c->post("/v1/sync/push", body, l.token);
    ASSERT_EQ(again.status, 200);
    EXPECT_EQ(json::serialize(first.json.at("acks")), json::serialize(again.json.at("acks")));
    a.apply_push_result(req, *decode_push_result(first.json));
    EXPECT_EQ(a.pending_count(), 0u);
    EXPECT_EQ(s.count("SELECT count(*) FROM records"), 5);
    EXPECT_EQ(s.count("SELECT count(*) FROM quarantine"), 1);
    EXPECT_EQ(s.count("SELECT count(*) FROM history"), 5);
}

TEST(server_sync, pipelined_requests_are_answered_in_order) {
    server_fixture s;
    auto l = s.enrol("fw_a");
    auto c = s.client();
    std::string pull = R"({"cursor":null})";
    std::string one = "POST /v1/sync/pull HTTP/1.1\r\nHost: x\r\nContent-Type: "
                      "application/json\r\nAuthorization: Bearer " +
                      l.token + "\r\nContent-Length: " + std::to_string(pull.size()) + "\r\n\r\n" +
                      pull;
    std::string health = "GET /v1/healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    std::string missing = "GET /v1/nothing HTTP/1.1\r\nHost: x\r\n\r\n";
    c->send_raw(one + health + missing + one);
    EXPECT_EQ(c->read_reply().json.as_object().count("cursor"), 1u);
    EXPECT_EQ(c->read_reply().json.at("status").as_string(), "ok");
    EXPECT_EQ(c->read_reply().status, 404u);
    EXPECT_EQ(c->read_reply().json.as_object().count("cursor"), 1u);
}

// After a page that is not the last, the server prepares the next one while the tablet reads.
// The tablet still gets every record once and then every later change, and a tablet revoked in
// between gets nothing prepared for it.
TEST(server_sync, pages_prepared_ahead_lose_nothing_and_are_not_served_to_a_revoked_tablet) {
    server_fixture s;
    auto la = s.enrol("fw_a"), lb = s.enrol("fw_a2");
    replica a(":memory:", test_catalog(), la.device);
    replica b(":memory:", test_catalog(), lb.device);
    std::vector<uuid> ids;
    for (int i = 0; i < 25; ++i)
        ids.push_back(*a.create("item", item("记录" + std::to_string(i))));
    auto c = s.client();
    sync_over(*c, a, la.token);

    auto metric = [&](const std::string& name) {
        auto m = c->get("/metrics");
        auto at = m.body.find("\n" + name + " ");
        return at == std::string::npos ? -1.0 : std::stod(m.body.substr(at + name.size() + 2));
    };
    auto pull_page = [&](replica& r, const std::string& token) {
        auto reply = c->post("/v1/sync/pull", encode(r.next_pull(10)), token);
        EXPECT_EQ(reply.status, 200) << reply.body;
        auto res = decode_pull_result(reply.json);
        EXPECT_TRUE(res) << reply.body;
        if (!res)
            return true;
        r.apply_pull_result(*res);
        return res->complete;
    };
    // First page of 10; the second is prepared meanwhile (waited for here, boundedly, so that
    // the next request is answered from it whatever the machine's speed).
    EXPECT_FALSE(pull_page(b, lb.token));
    for (int i = 0; i < 600 && metric("fieldsync_pull_pages_prepared_bytes") <= 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    // Changes land after the second page was prepared: an edit of a record of the first page and
    // a new record.
    ASSERT_TRUE(a.update(ids[0], {{"count", 41}}));
    auto late = *a.create("item", item("后来的"));
    sync_over(*c, a, la.token); // (its own pulls may use prepared pages too)
    const double used = metric("fieldsync_pull_pages_prepared_used_total");
    EXPECT_FALSE(pull_page(b, lb.token)); // records 11-20, from the prepared page
    EXPECT_EQ(metric("fieldsync_pull_pages_prepared_used_total"), used + 1);
    for (int guard = 0; guard < 20 && !pull_page(b, lb.token); ++guard) {
    }
    EXPECT_EQ(b.get(ids[0])->fields.at("count").as_int64(), 41);
    EXPECT_TRUE(b.get(late));
    EXPECT_EQ(a.content_hash(), b.content_hash());

    // A third tablet reads one page, is revoked, and asks for the prepared second page: refused.
    auto lc = s.enrol("fw_a");
    replica t(":memory:", test_catalog(), lc.device);
    EXPECT_FALSE(pull_page(t, lc.token));
    for (int i = 0; i < 600 && metric("fieldsync_pull_pages_prepared_bytes") <= 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    {
        sql::connection db(s.dir.file("fieldsync.db"), sql::open_mode::read_write);
        sql::statement st(db.handle(), "UPDATE devices SET revoked_ms = 1 WHERE device = ?");
        st.bind(1, std::string_view(lc.device));
        st.run();
    }
    auto refused = c->post("/v1/sync/pull", encode(t.next_pull(10)), lc.token);
    EXPECT_EQ(refused.status, 401) << refused.body;
    EXPECT_EQ(refused.body.find("记录"), std::string::npos);
}

TEST(server_sync, enrolment_code_is_one_time) {
    server_fixture s;
    auto code = make_code(s.dir.path().string(), "fw_a");
    auto c = s.client();
    EXPECT_EQ(c->post("/v1/enrol", json::value{{"code", code}}).status, 200u);
    auto again = c->post("/v1/enrol", json::value{{"code", code}});
    EXPECT_EQ(again.status, 401u);
    EXPECT_EQ(again.error_code(), "invalid_code");
}

TEST(server_sync, forged_cursor_is_400_and_scope_change_resets) {
    server_fixture s;
    auto l = s.enrol("fw_a");
    replica a(":memory:", test_catalog(), l.device);
    (void)a.create("item", item("王五"));
    auto c = s.client();
    sync_over(*c, a, l.token);
    auto forged = c->post("/v1/sync/pull", json::value{{"cursor", "djEuZm9yZ2Vk"}}, l.token);
    EXPECT_EQ(forged.status, 400u);
    EXPECT_EQ(forged.error_code(), "bad_cursor");
    {
        sql::connection db(s.dir.file("fieldsync.db"), sql::open_mode::read_write);
        sql::transaction tx(db);
        ASSERT_TRUE(auth::set_scope(db, "fw_a", town_a, {village_a1}, system_wall_ms()));
        tx.commit();
    }
    auto res = c->post("/v1/sync/pull", encode(a.next_pull()), l.token);
    ASSERT_EQ(res.status, 200u) << res.body;
    EXPECT_TRUE(res.json.as_object().at("reset").as_bool());
    EXPECT_EQ(res.json.as_object().at("reset_reason").as_string(), "scope_changed");
}

TEST(server_sync, health_and_metrics_report_what_happened) {
    server_fixture s;
    auto l = s.enrol("fw_a");
    replica a(":memory:", test_catalog(), l.device);
    (void)a.create("item", item("赵六"));
    (void)a.create("item", {{"township", town_b}, {"name", "x"}}); // out of scope
    auto c = s.client();
    sync_over(*c, a, l.token);
    auto h = c->get("/v1/healthz");
    EXPECT_EQ(h.status, 200u);
    auto m = c->get("/metrics");
    EXPECT_EQ(m.status, 200u);
    EXPECT_TRUE(m.content_type.starts_with("text/plain"));
    for (const char* line :
         {"fieldsync_mutations_applied_total 1", "fieldsync_mutations_rejected_total 1",
          "fieldsync_http_requests_total{route=\"/v1/sync/push\",status=\"200\"} 1",
          "fieldsync_open_connections 1", "fieldsync_writer_queue_depth 0",
          "fieldsync_http_request_duration_seconds_bucket{route=\"/v1/sync/pull\",le=\"+Inf\"}"})
        EXPECT_NE(m.body.find(line), std::string::npos) << line;
}

TEST(server_sync, stop_closes_connections_and_keeps_what_was_acknowledged) {
    testing::temp_dir dir;
    seed_database(dir.path().string());
    std::string token, device;
    std::size_t acknowledged = 0;
    {
        server::server srv(test_config(dir.path().string()));
        srv.start();
        https_client c(srv.port(), srv.certificate_file());
        auto e = c.post("/v1/enrol", json::value{{"code", make_code(dir.path().string(), "fw_a")}});
        ASSERT_EQ(e.status, 200u);
        token = std::string(e.json.at("token").as_string());
        device = std::string(e.json.at("device").as_string());
        replica a(":memory:", test_catalog(), device);
        for (int i = 0; i < 20; ++i)
            (void)a.create("item", item("s" + std::to_string(i)));
        auto req = a.next_push();
        auto body = json::serialize(encode(req));
        // A push answered, then stop: the open keep-alive connection is closed, and what was
        // acknowledged is in the database.
        c.send_raw("POST /v1/sync/push HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Authorization: Bearer " +
                   token + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
                   body);
        auto reply = c.read_reply();
        srv.stop();
        ASSERT_EQ(reply.status, 200u);
        acknowledged = reply.json.at("acks").as_array().size();
        EXPECT_TRUE(c.wait_closed());
    }
    sql::connection db(dir.file("fieldsync.db"), sql::open_mode::read_only);
    EXPECT_EQ(db.integrity_check(), "ok");
    sql::statement s(db.handle(), "SELECT count(*) FROM records");
    ASSERT_TRUE(s.step());
    EXPECT_EQ(static_cast<std::size_t>(s.int64(0)), acknowledged);
}

// After answering a page of a pull the server prepares the next one; if the tablet never asks
// (it lost signal), the page must not stay in memory until some other pull comes along: the
// server drops it by itself within 1.5 x pull_page_keep_ms, also when nothing else happens.
TEST(server_sync, a_prepared_pull_page_nobody_asks_for_is_dropped_on_an_idle_server) {
    server_fixture s([](server::config& c) { c.pull_page_keep_ms = 3000; });
    auto l = s.enrol("fw_a");
    replica a(":memory:", test_catalog(), l.device);
    for (int i = 0; i < 3; ++i)
        (void)*a.create("item", item("page " + std::to_string(i)));
    auto c = s.client();
    sync_over(*c, a, l.token);
    auto prepared_bytes = [&] {
        auto m = s.client()->get("/metrics").body;
        const std::string name = "\nfieldsync_pull_pages_prepared_bytes ";
        auto at = m.find(name);
        return at == std::string::npos ? -1 : std::atoll(m.c_str() + at + name.size());
    };
    // A new tablet's first page of one record: the second is prepared and never asked for.
    auto first =
        c->post("/v1/sync/pull", R"({"cursor":null,"limit":1,"shared_clocks":true})", l.token);
    ASSERT_EQ(first.status, 200u) << first.body;
    ASSERT_FALSE(json::parse(first.body).at("complete").as_bool());
    auto until = [](auto done) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (!done() && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        return done();
    };
    ASSERT_TRUE(until([&] { return prepared_bytes() > 0; })) << "no page was prepared";
    EXPECT_TRUE(until([&] { return prepared_bytes() == 0; })) << "the page stayed";
}

} // namespace
} // namespace fieldsync
