// Oversize, malformed and slow clients get clear JSON errors or are cut off, store nothing, and
// leave the server healthy for a tablet syncing at the same time.
#include "server_fixture.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace fieldsync {
namespace {

using namespace fieldsync::testing;

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

// Each malformed request with its answer is in the bad-input catalogue
// (tests/data/bad_inputs.json, bad_input_catalogue_test.cpp); here: clients a catalogue cannot
// express (slow, oversize, garbage) while a tablet keeps syncing.
TEST(server_bad_input, slow_oversize_and_garbage_clients_leave_a_syncing_tablet_alone) {
    server_fixture s(small_limits);
    auto bad = s.enrol("fw_a");
    healthy_tablet healthy(s);

    auto expect_error = [&](const http_reply& r, unsigned status, const char* code) {
        EXPECT_EQ(r.status, status) << r.body;
        EXPECT_EQ(r.error_code(), code) << r.body;
        ASSERT_TRUE(r.json.is_object());
        EXPECT_TRUE(r.json.at("error").at("message").is_string());
    };
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

TEST(server_bad_input, a_tablet_still_sending_an_oversize_push_reads_why_it_was_refused) {
    // A tablet writes its whole request before it reads the answer. Refused from the
    // Content-Length, the server must not reset the connection under the rest of the body: the
    // tablet would see "connection reset" instead of 413 and could not tell the worker why.
    server_fixture s(small_limits);
    auto l = s.enrol("fw_a");
    for (int i = 0; i < 3; ++i) {
        auto c = s.client();
        c->send_raw(request(l.token, std::string(8 * 1024 * 1024, ' ')));
        auto r = c->read_reply();
        EXPECT_EQ(r.status, 413u) << r.body;
        EXPECT_EQ(r.error_code(), "payload_too_large") << r.body;
        EXPECT_TRUE(c->wait_closed());
    }
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
