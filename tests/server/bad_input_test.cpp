// Oversize, malformed and slow requests get clear JSON errors, store nothing, and leave the
// server healthy for a tablet syncing at the same time.
#include "server_fixture.hpp"

#include <boost/json/serialize.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace fieldsync {
namespace {

using namespace fieldsync::testing;
namespace json = boost::json;

constexpr std::size_t body_limit = 64 * 1024;

void small_limits(server::config& cfg) {
    cfg.max_body_bytes = body_limit;
    cfg.max_json_depth = 16;
    cfg.header_timeout_ms = 300;
    cfg.body_timeout_ms = 300;
    cfg.max_pipeline = 2;
}

// A tablet that keeps creating and syncing records until told to stop.
class healthy_tablet {
public:
    healthy_tablet(const server_fixture& s)
        : login_(s.enrol("fw_a2")), thread_([this, &s] {
              try {
                  replica r(":memory:", test_catalog(), login_.device);
                  auto c = s.client();
                  while (!stop_) {
                      (void)r.create("item", item("h" + std::to_string(made_)));
                      ++made_;
                      sync_over(*c, r, login_.token);
                  }
                  while (r.pending_count() > 0)
                      sync_over(*c, r, login_.token);
                  ok_ = r.pending_count() == 0;
              } catch (const std::exception& e) {
                  error_ = e.what();
              }
          }) {}
    // Stops, waits, and returns how many records it made (all acknowledged).
    int finish() {
        stop_ = true;
        thread_.join();
        EXPECT_EQ(error_, "");
        EXPECT_TRUE(ok_);
        return made_;
    }

private:
    tablet_login login_;
    std::atomic<bool> stop_{false};
    std::atomic<int> made_{0};
    bool ok_ = false;
    std::string error_;
    std::thread thread_;
};

std::string request(const std::string& token, const std::string& body,
                    const std::string& content_type = "application/json") {
    return "POST /v1/sync/push HTTP/1.1\r\nHost: x\r\nContent-Type: " + content_type +
           "\r\nAuthorization: Bearer " + token +
           "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

TEST(server_bad_input, each_gets_a_clear_error_and_nothing_is_stored) {
    server_fixture s(small_limits);
    auto bad = s.enrol("fw_a");
    healthy_tablet healthy(s);

    auto c = s.client();
    auto expect_error = [&](const http_reply& r, unsigned status, const char* code) {
        EXPECT_EQ(r.status, status) << r.body;
        EXPECT_EQ(r.error_code(), code) << r.body;
        ASSERT_TRUE(r.json.is_object());
        EXPECT_TRUE(r.json.at("error").at("message").is_string());
    };
    expect_error(c->post("/v1/sync/push", "{\"schema_version\": 1, \"mutations\": [", bad.token),
                 400, "invalid_json");
    expect_error(c->post("/v1/sync/push", "schema_version=1", bad.token,
                         "application/x-www-form-urlencoded"),
                 415, "unsupported_media_type");
    expect_error(c->post("/v1/sync/push", "", bad.token, ""), 415, "unsupported_media_type");
    expect_error(c->post("/v1/sync/push",
                         "{\"schema_version\":1,\"mutations\":[],\"x\":\"\xff\xfe\"}", bad.token),
                 400, "invalid_utf8");
    expect_error(c->post("/v1/sync/push", std::string(40, '[') + std::string(40, ']'), bad.token),
                 400, "too_deep");
    expect_error(c->post("/v1/sync/push", "[1, 2, 3]", bad.token), 400, "invalid_argument");
    expect_error(c->post("/v1/sync/push", json::value{{"schema_version", 1}}, bad.token), 400,
                 "invalid_argument");
    // A huge array within the byte limit: more mutations than a push may carry.
    {
        json::array many;
        for (int i = 1; i <= 10001; ++i)
            many.push_back(json::object{{"seq", i}});
        auto text = json::serialize(json::object{{"schema_version", 1}, {"mutations", many}});
        ASSERT_LT(text.size(), body_limit * 4);
        server_fixture big; // default limits: the body fits, the count does not
        auto l = big.enrol("fw_a");
        auto r = big.client()->post("/v1/sync/push", text, l.token);
        expect_error(r, 400, "invalid_argument");
        EXPECT_EQ(big.count("SELECT count(*) FROM records"), 0);
    }
    expect_error(c->get("/v1/sync/push", bad.token), 405, "method_not_allowed");
    expect_error(c->get("/v1/unknown", bad.token), 404, "not_found");
    // Still usable after all of that: the errors above kept the connection.
    EXPECT_EQ(c->get("/v1/healthz").status, 200u);

    // Oversize: refused from the Content-Length, before the body is read.
    {
        auto big = s.client();
        big->send_raw("POST /v1/sync/push HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      "Authorization: Bearer " +
                      bad.token + "\r\nContent-Length: " + std::to_string(body_limit * 10) +
                      "\r\n\r\n");
        expect_error(big->read_reply(), 413, "payload_too_large");
        EXPECT_TRUE(big->wait_closed());
    }
    // A slow client: half a request line, then nothing. The server closes it.
    {
        auto slow = s.client();
        slow->send_raw("POST /v1/sync/pu");
        EXPECT_TRUE(slow->wait_closed());
    }
    // A slow body: headers, then half the body.
    {
        auto slow = s.client();
        slow->send_raw(request(bad.token, std::string(1000, ' ')).substr(0, 300));
        EXPECT_TRUE(slow->wait_closed());
    }
    // Garbage instead of HTTP.
    {
        auto junk = s.client();
        junk->send_raw("HELLO\r\n\r\n");
        expect_error(junk->read_reply(), 400, "bad_request");
    }

    int made = healthy.finish();
    EXPECT_GT(made, 0);
    EXPECT_EQ(s.count("SELECT count(*) FROM records"), made);
    EXPECT_EQ(s.count("SELECT count(*) FROM quarantine"), 0);
    EXPECT_EQ(s.count("SELECT count(*) FROM records WHERE created_by = 'fw_a'"), 0);
    EXPECT_EQ(s.client()->get("/v1/healthz").status, 200u);
}

TEST(server_bad_input, pipeline_is_bounded_but_every_request_is_answered) {
    server_fixture s(small_limits); // at most 2 in flight per connection
    auto l = s.enrol("fw_a");
    auto c = s.client();
    std::string all;
    for (int i = 0; i < 10; ++i)
        all += "GET /v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + l.token + "\r\n\r\n";
    c->send_raw(all);
    for (int i = 0; i < 10; ++i)
        EXPECT_EQ(c->read_reply().json.at("device").as_string(), l.device);
}

} // namespace
} // namespace fieldsync
