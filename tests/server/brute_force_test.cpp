// Guessing secrets is slowed per client address and logged (docs/reliability.md, "Security"):
// the limiter's policy with a hand-moved clock, then POST /v1/enrol over real TLS from two
// loopback addresses.
#include "server/auth.hpp"
#include "server/throttle.hpp"
#include "server_fixture.hpp"
#include "stderr_capture.hpp"

#include <boost/json/parse.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <sstream>

namespace fieldsync {
namespace {

using namespace fieldsync::testing;
using server::attempt_limiter;
using std::chrono::steady_clock;
namespace json = boost::json;

struct hand_clock {
    steady_clock::time_point t{std::chrono::hours(1000)};
    attempt_limiter::clock_fn fn() {
        return [this] { return t; };
    }
    void advance(std::chrono::milliseconds d) { t += d; }
};

TEST(brute_force, the_first_failures_are_free_then_the_delay_doubles_up_to_a_ceiling) {
    hand_clock clock;
    attempt_limiter l({}, clock.fn());
    for (int i = 1; i <= 5; ++i) {
        EXPECT_EQ(l.retry_after("10.0.0.1"), 0) << i;
        auto v = l.failed("10.0.0.1");
        EXPECT_EQ(v.failures, i);
        EXPECT_EQ(v.locked_s, 0);
    }
    std::int64_t expected = 2;
    for (int i = 6; i <= 15; ++i) { // 2, 4, … 512 s, then the 15-minute ceiling
        auto v = l.failed("10.0.0.1");
        EXPECT_EQ(v.locked_s, expected) << "failure " << i;
        EXPECT_EQ(l.retry_after("10.0.0.1"), expected);
        clock.advance(std::chrono::seconds(expected) - std::chrono::milliseconds(1));
        EXPECT_EQ(l.retry_after("10.0.0.1"), 1) << "still locked a millisecond before the end";
        clock.advance(std::chrono::milliseconds(1));
        EXPECT_EQ(l.retry_after("10.0.0.1"), 0) << "heard again after Retry-After seconds";
        expected = std::min<std::int64_t>(expected * 2, 15 * 60);
    }
    EXPECT_EQ(expected, 15 * 60) << "the ceiling was reached";
}

TEST(brute_force, one_address_locked_out_does_not_lock_out_another) {
    hand_clock clock;
    attempt_limiter l({}, clock.fn());
    for (int i = 0; i < 12; ++i)
        l.failed("198.51.100.7");
    EXPECT_GT(l.retry_after("198.51.100.7"), 0);
    EXPECT_EQ(l.retry_after("198.51.100.8"), 0);
    EXPECT_EQ(l.retry_after("2001:db8::1"), 0);
    EXPECT_EQ(l.failed("198.51.100.8").locked_s, 0) << "another address starts with free tries";
}

TEST(brute_force, ipv6_counts_per_64_bit_prefix_and_mapped_ipv4_as_ipv4) {
    EXPECT_EQ(attempt_limiter::key_of("2001:db8:1:2:aaaa::1"),
              attempt_limiter::key_of("2001:db8:1:2:ffff:1:2:3"));
    EXPECT_NE(attempt_limiter::key_of("2001:db8:1:2::1"),
              attempt_limiter::key_of("2001:db8:1:3::1"));
    EXPECT_EQ(attempt_limiter::key_of("::ffff:192.0.2.1"), "192.0.2.1");
    EXPECT_EQ(attempt_limiter::key_of("192.0.2.1"), "192.0.2.1");

    hand_clock clock;
    attempt_limiter l({}, clock.fn());
    for (int i = 0; i < 6; ++i) // rotating the interface id within a /64 does not help
        l.failed("2001:db8:1:2::" + std::to_string(i + 1));
    EXPECT_GT(l.retry_after("2001:db8:1:2::99"), 0);
    EXPECT_EQ(l.retry_after("2001:db8:1:3::99"), 0);
}

TEST(brute_force, an_address_that_stays_quiet_starts_over) {
    hand_clock clock;
    attempt_limiter l({}, clock.fn());
    for (int i = 0; i < 8; ++i)
        l.failed("10.0.0.1");
    clock.advance(std::chrono::minutes(16));
    EXPECT_EQ(l.retry_after("10.0.0.1"), 0);
    EXPECT_EQ(l.failed("10.0.0.1").failures, 1);
}

TEST(brute_force, a_global_ceiling_bounds_guessing_from_many_addresses) {
    hand_clock clock;
    attempt_limiter::policy p;
    p.global_per_minute = 50;
    attempt_limiter l(p, clock.fn());
    for (int i = 0; i < 50; ++i) // one failure each: no address is locked by itself
        EXPECT_EQ(l.failed("10.1.0." + std::to_string(i)).locked_s, 0);
    EXPECT_GT(l.retry_after("10.9.9.9"), 0) << "the ceiling holds back a fresh address too";
    EXPECT_LE(l.retry_after("10.9.9.9"), 60);
    clock.advance(std::chrono::seconds(61));
    EXPECT_EQ(l.retry_after("10.9.9.9"), 0);
}

TEST(brute_force, the_table_of_addresses_stays_bounded) {
    hand_clock clock;
    attempt_limiter::policy p;
    p.max_addresses = 100;
    p.global_per_minute = 1 << 30;
    attempt_limiter l(p, clock.fn());
    for (int i = 0; i < 1000; ++i)
        l.failed("10.2." + std::to_string(i / 256) + "." + std::to_string(i % 256));
    // The newest addresses are still tracked (a locked one stays locked).
    for (int i = 0; i < 6; ++i)
        l.failed("10.3.0.1");
    EXPECT_GT(l.retry_after("10.3.0.1"), 0);
}

// Over HTTP: a guesser at 127.0.0.1 is slowed and logged, a tablet at 127.0.0.2 enrols.
TEST(brute_force, failed_enrolments_are_slowed_per_address_and_logged_without_the_code) {
    server_fixture server;
    stderr_capture log(server.dir.file("stderr.log"));
    auto attacker = std::make_unique<https_client>(server.port(), server.cert());
    std::vector<std::string> guesses;
    for (int i = 0; i < 6; ++i) {
        std::string guess = "ZZZZ-" + std::to_string(1000 + i) + "-QRST";
        guesses.push_back(guess);
        auto r = attacker->post("/v1/enrol", json::value{{"code", guess}});
        EXPECT_EQ(r.status, 401u) << i;
        EXPECT_EQ(r.error_code(), "invalid_code");
    }
    // Locked now: even a genuine code is not heard from this address (and stays unused).
    std::string genuine = make_code(server.dir.path().string(), "fw_a");
    auto refused = attacker->post("/v1/enrol", json::value{{"code", genuine}});
    EXPECT_EQ(refused.status, 429u);
    EXPECT_EQ(refused.error_code(), "rate_limited");
    auto retry = refused.header("Retry-After");
    ASSERT_FALSE(retry.empty());
    EXPECT_GE(std::stoi(retry), 1);
    EXPECT_LE(std::stoi(retry), 2);
    EXPECT_EQ(server.count("SELECT count(*) FROM enrolment_codes WHERE used_ms IS NOT NULL"), 0);

    // Another client address is not locked out by the guesser.
    https_client tablet(server.port(), server.cert(), "127.0.0.2");
    auto ok = tablet.post("/v1/enrol", json::value{{"code", genuine}, {"label", "tablet"}});
    EXPECT_EQ(ok.status, 200u) << ok.body;

    log.restore();
    auto text = log.text();
    int lines = 0;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.find("enrol_failed") == std::string::npos)
            continue;
        auto v = json::parse(line);
        EXPECT_EQ(v.at("client").as_string(), "127.0.0.1");
        EXPECT_EQ(v.at("code_prefix").as_string(), "ZZZZ");
        EXPECT_EQ(v.at("failures").as_int64(), ++lines);
    }
    EXPECT_EQ(lines, 6) << text;
    for (const auto& g : guesses) {
        EXPECT_EQ(text.find(g), std::string::npos) << "a guessed code is in the log";
        EXPECT_EQ(text.find(auth::normalize_code(g)), std::string::npos);
    }
    EXPECT_EQ(text.find(auth::normalize_code(genuine)), std::string::npos);
    EXPECT_EQ(text.find(ok.json.at("token").as_string().c_str()), std::string::npos);
}

// Web logins are throttled by the web backend (server/web_session.*); checked here end to end:
// wrong passwords are slowed with Retry-After and logged with the address, never the password.
TEST(brute_force, failed_web_logins_are_slowed_and_logged_without_the_password) {
    server_fixture server;
    {
        sql::connection db(server.dir.file("fieldsync.db"), sql::open_mode::read_write);
        sql::transaction tx(db);
        for (const char* u : {"head_a", "admin"})
            ASSERT_TRUE(auth::set_password(db, u, "Right-Passw0rd-1234", system_wall_ms()));
        tx.commit();
    }
    stderr_capture log(server.dir.file("stderr.log"));
    auto login = [&](https_client& c, const std::string& user, const std::string& password) {
        std::string body = "{\"username\":\"" + user + "\",\"password\":\"" + password + "\"}";
        return c.post("/v1/session", body);
    };
    auto attacker = server.client();
    std::vector<std::string> wrong;
    unsigned last = 0;
    http_reply r;
    for (int i = 0; i < 12 && last != 429; ++i) {
        wrong.push_back("Wrong-Passw0rd-" + std::to_string(7000 + i));
        r = login(*attacker, "head_a", wrong.back());
        last = r.status;
        if (i == 0 && last == 404)
            GTEST_SKIP() << "no web login on this server";
        if (last != 429) {
            EXPECT_EQ(last, 401u) << r.body;
        }
    }
    ASSERT_EQ(last, 429u) << "wrong passwords are never slowed down";
    EXPECT_FALSE(r.header("Retry-After").empty());
    // The right password does not get through while the user is locked.
    EXPECT_EQ(login(*attacker, "head_a", "Right-Passw0rd-1234").status, 429u);
    // Another user at another address is not held back.
    https_client office(server.port(), server.cert(), "127.0.0.2");
    EXPECT_EQ(login(office, "admin", "Right-Passw0rd-1234").status, 200u);

    log.restore();
    auto text = log.text();
    int failures = 0;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.find("login_failed") == std::string::npos)
            continue;
        ++failures;
        auto v = json::parse(line);
        EXPECT_EQ(v.at("client").as_string(), "127.0.0.1");
    }
    EXPECT_GE(failures, 1) << text;
    for (const auto& p : wrong)
        EXPECT_EQ(text.find(p), std::string::npos) << "a password in the log";
    EXPECT_EQ(text.find("Right-Passw0rd-1234"), std::string::npos);
}

} // namespace
} // namespace fieldsync
