// The web page's side of fieldsyncd over real TLS: password login for a session cookie (strict
// attributes, stored hashed), the cookie standing in for a head's or admin's token, CSRF and
// Origin checks on every change, logout, idle and absolute expiry, throttled and logged failed
// logins, the embedded page with its security headers, and what the page reads besides the
// review API: the month overview per village, the trend, divisions, the catalog, QR codes.
#include "server_fixture.hpp"

#include "server/auth.hpp"
#include "server/static_files.hpp"
#include "server/web_session.hpp"
#include "sync/district_fixture.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <zlib.h>

namespace fieldsync {
namespace {

using namespace fieldsync::testing;
namespace json = boost::json;

using header_list = std::vector<std::pair<std::string, std::string>>;

constexpr const char* head_password = "head-password-1";
constexpr const char* admin_password = "admin-password-1";
constexpr const char* worker_password = "worker-password-1";

void set_passwords(const std::string& data_dir) {
    sql::connection c(data_dir + "/fieldsync.db", sql::open_mode::read_write);
    sql::transaction tx(c);
    for (auto [user, password] :
         {std::pair{"head_a", head_password}, std::pair{"admin", admin_password},
          std::pair{"fw_a", worker_password}})
        if (!auth::set_password(c, user, password, system_wall_ms()))
            throw std::runtime_error("set_password");
    tx.commit();
}

void exec(const std::string& data_dir, const std::string& sql_text) {
    sql::connection c(data_dir + "/fieldsync.db", sql::open_mode::read_write);
    c.exec(sql_text);
}

// A browser-like client: keeps the session cookie and CSRF token it was given.
struct browser {
    explicit browser(const server_fixture& f) : fx(f), c(f.client()) {}

    std::string host() const { return "127.0.0.1:" + std::to_string(fx.port()); }
    std::string origin() const { return "https://" + host(); }

    http_reply call(const std::string& method, const std::string& target,
                    const header_list& headers = {}, const std::string& body = {}) {
        std::string text = method + " " + target + " HTTP/1.1\r\nHost: " + host() + "\r\n";
        for (const auto& [k, v] : headers)
            text += k + ": " + v + "\r\n";
        if (method == "POST")
            text +=
                "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                "\r\n";
        text += "\r\n" + body;
        c->send_raw(text);
        return c->read_reply();
    }
    header_list with_cookie(header_list h = {}) const {
        if (!cookie.empty())
            h.emplace_back("Cookie", "theme=dark; fs_session=" + cookie);
        return h;
    }
    http_reply get(const std::string& target) { return call("GET", target, with_cookie()); }
    // A change as the page sends it: cookie, CSRF token, our own Origin.
    http_reply post(const std::string& target, const json::value& body) {
        return call("POST", target, with_cookie({{"X-CSRF-Token", csrf}, {"Origin", origin()}}),
                    json::serialize(body));
    }
    // Sends the known-browser cookie back, as a browser does (it is only for /v1/session).
    http_reply login(const std::string& user, const std::string& password) {
        header_list h{{"Origin", origin()}};
        if (!known.empty())
            h.emplace_back("Cookie", "fs_known=" + known);
        auto r = call("POST", "/v1/session", h,
                      json::serialize(json::value{{"username", user}, {"password", password}}));
        if (r.status == 200) {
            auto set = r.header("Set-Cookie");
            auto start = set.find("fs_session=") + 11;
            cookie = set.substr(start, set.find(';') - start);
            csrf = std::string(r.json.at("csrf_token").as_string());
            for (const auto& [k, v] : r.headers)
                if ((k == "Set-Cookie" || k == "set-cookie") && v.starts_with("fs_known="))
                    known = v.substr(9, v.find(';') - 9);
        }
        return r;
    }

    const server_fixture& fx;
    std::unique_ptr<https_client> c;
    std::string cookie, csrf;
    std::string known; // the fs_known value, once a login succeeded
};

struct web_fixture : server_fixture {
    explicit web_fixture(std::function<void(server::config&)> tweak = {})
        : server_fixture(std::move(tweak)) {
        set_passwords(dir.path().string());
    }
    std::string db() const { return dir.path().string(); }
};

TEST(web_session, login_gives_a_strict_cookie_stored_only_as_its_hash) {
    web_fixture f;
    browser b(f);
    auto r = b.login("head_a", head_password);
    ASSERT_EQ(r.status, 200u) << r.body;
    auto set = r.header("Set-Cookie");
    EXPECT_TRUE(set.starts_with("fs_session=")) << set;
    for (const char* attr :
         {"; HttpOnly", "; Secure", "; SameSite=Strict", "; Path=/", "; Max-Age=43200"})
        EXPECT_NE(set.find(attr), std::string::npos) << attr << " missing in " << set;
    EXPECT_EQ(b.cookie.size(), 43u); // 256 bits, base64url
    const auto& o = r.json.as_object();
    EXPECT_EQ(o.at("user").at("username").as_string(), "head_a");
    EXPECT_EQ(o.at("user").at("role").as_string(), "township_head");
    EXPECT_EQ(o.at("user").at("township").as_string(), town_a);
    EXPECT_TRUE(o.at("user").at("villages").is_array());
    EXPECT_GE(b.csrf.size(), 32u);
    EXPECT_GT(o.at("expires_ms").as_int64(), system_wall_ms());
    EXPECT_FALSE(o.at("server_clock").as_string().empty());
    // Stored hashed: the row is found by the hash, the cookie itself is nowhere.
    EXPECT_EQ(f.count("SELECT count(*) FROM web_sessions WHERE cookie_hash = '" +
                      auth::sha256_hex(b.cookie) + "'"),
              1);
    EXPECT_EQ(f.count("SELECT count(*) FROM web_sessions WHERE cookie_hash = '" + b.cookie +
                      "' OR csrf_token = '" + b.cookie + "'"),
              0);
    // A reloaded page asks for its session.
    auto again = b.get("/v1/session");
    ASSERT_EQ(again.status, 200u) << again.body;
    EXPECT_EQ(again.json.at("csrf_token").as_string(), b.csrf);
    EXPECT_EQ(again.json.at("user").at("username").as_string(), "head_a");
    // Two logins are two sessions.
    browser other(f);
    ASSERT_EQ(other.login("head_a", head_password).status, 200u);
    EXPECT_NE(other.cookie, b.cookie);
    EXPECT_NE(other.csrf, b.csrf);
}

TEST(web_session, bad_logins_say_nothing_about_which_part_was_wrong) {
    web_fixture f;
    browser b(f);
    auto wrong = b.login("head_a", "not-the-password");
    auto unknown = b.login("nobody", "not-the-password");
    EXPECT_EQ(wrong.status, 401u);
    EXPECT_EQ(wrong.error_code(), "bad_login");
    EXPECT_EQ(wrong.header("Set-Cookie"), "");
    EXPECT_EQ(unknown.status, 401u);
    EXPECT_EQ(unknown.body, wrong.body);
    // A user without a password (tablet-only) cannot log in with an empty one.
    EXPECT_EQ(b.login("fw_a2", "").status, 400u);
    EXPECT_EQ(b.login("fw_a2", "whatever-password").status, 401u);
    // Field workers use their tablets.
    auto worker = b.login("fw_a", worker_password);
    EXPECT_EQ(worker.status, 403u);
    EXPECT_EQ(worker.error_code(), "forbidden");
    // Disabled users are refused like a wrong password.
    {
        sql::connection c(f.db() + "/fieldsync.db", sql::open_mode::read_write);
        sql::transaction tx(c);
        ASSERT_TRUE(auth::set_disabled(c, "admin", true, system_wall_ms()));
        tx.commit();
    }
    EXPECT_EQ(b.login("admin", admin_password).error_code(), "bad_login");
    EXPECT_EQ(f.count("SELECT count(*) FROM web_sessions"), 0);
    // Not JSON, or not the fields: a clear 4xx.
    EXPECT_EQ(b.call("POST", "/v1/session", {}, "username=head_a").status, 400u);
    EXPECT_EQ(b.call("POST", "/v1/session", {}, R"({"username":"head_a"})").status, 400u);
    // A login posted from another site is refused before the password is looked at.
    auto foreign =
        b.call("POST", "/v1/session", {{"Origin", "https://evil.example"}},
               json::serialize(json::value{{"username", "head_a"}, {"password", head_password}}));
    EXPECT_EQ(foreign.status, 403u);
    EXPECT_EQ(foreign.error_code(), "csrf");
}

TEST(web_session, the_cookie_authenticates_like_a_token_of_its_user) {
    web_fixture f;
    browser head(f), admin(f);
    ASSERT_EQ(head.login("head_a", head_password).status, 200u);
    ASSERT_EQ(admin.login("admin", admin_password).status, 200u);

    auto me = head.get("/v1/me");
    ASSERT_EQ(me.status, 200u) << me.body;
    EXPECT_EQ(me.json.at("user").as_string(), "head_a");
    EXPECT_EQ(me.json.at("role").as_string(), "township_head");
    EXPECT_EQ(me.json.at("scope").at("township").as_string(), town_a);
    EXPECT_EQ(head.get("/v1/review/records").status, 200u);
    EXPECT_EQ(head.get("/v1/rollups/2026-11").status, 200u);
    EXPECT_EQ(head.get("/v1/admin/users").status, 403u); // as the head's token would be
    auto users = admin.get("/v1/admin/users");
    ASSERT_EQ(users.status, 200u);
    EXPECT_GE(users.json.at("users").as_array().size(), 6u);
    // Tablets' endpoints take device tokens only.
    auto pull = admin.call("POST", "/v1/sync/pull",
                           admin.with_cookie({{"X-CSRF-Token", admin.csrf}}), "{}");
    EXPECT_EQ(pull.status, 401u);
    // No cookie, an unknown one, or a cookie of another name: 401.
    browser anon(f);
    EXPECT_EQ(anon.get("/v1/session").status, 401u);
    EXPECT_EQ(anon.get("/v1/me").status, 401u);
    anon.cookie = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    EXPECT_EQ(anon.get("/v1/me").status, 401u);
    EXPECT_EQ(anon.call("GET", "/v1/me", {{"Cookie", "fs_sessionx=" + head.cookie}}).status, 401u);
    // Bearer clients are unaffected: a tablet token needs no CSRF token.
    auto tablet = f.enrol("admin");
    auto made = f.client()->post(
        "/v1/admin/users",
        json::value{{"username", "by_token"}, {"role", "field_worker"}, {"township", town_a}},
        tablet.token);
    EXPECT_EQ(made.status, 201u) << made.body;
}

TEST(web_session, changes_need_the_csrf_token_and_this_sites_origin) {
    web_fixture f;
    browser admin(f);
    ASSERT_EQ(admin.login("admin", admin_password).status, 200u);
    auto body = [](const char* name) {
        return json::serialize(
            json::value{{"username", name}, {"role", "field_worker"}, {"township", town_a}});
    };
    auto users = [&] { return f.count("SELECT count(*) FROM users"); };
    const auto before = users();

    auto none = admin.call("POST", "/v1/admin/users", admin.with_cookie(), body("x1"));
    EXPECT_EQ(none.status, 403u);
    EXPECT_EQ(none.error_code(), "csrf");
    auto wrong = admin.call("POST", "/v1/admin/users",
                            admin.with_cookie({{"X-CSRF-Token", admin.csrf + "x"}}), body("x2"));
    EXPECT_EQ(wrong.error_code(), "csrf");
    auto empty = admin.call("POST", "/v1/admin/users", admin.with_cookie({{"X-CSRF-Token", ""}}),
                            body("x3"));
    EXPECT_EQ(empty.error_code(), "csrf");
    auto foreign = admin.call(
        "POST", "/v1/admin/users",
        admin.with_cookie({{"X-CSRF-Token", admin.csrf}, {"Origin", "https://evil.example"}}),
        body("x4"));
    EXPECT_EQ(foreign.status, 403u);
    EXPECT_EQ(foreign.error_code(), "csrf");
    auto null_origin = admin.call(
        "POST", "/v1/admin/users",
        admin.with_cookie({{"X-CSRF-Token", admin.csrf}, {"Origin", "null"}}), body("x5"));
    EXPECT_EQ(null_origin.error_code(), "csrf");
    // Another session's token is not this session's token.
    browser other(f);
    ASSERT_EQ(other.login("admin", admin_password).status, 200u);
    auto crossed = admin.call("POST", "/v1/admin/users",
                              admin.with_cookie({{"X-CSRF-Token", other.csrf}}), body("x6"));
    EXPECT_EQ(crossed.error_code(), "csrf");
    EXPECT_EQ(users(), before); // nothing changed

    auto ok = admin.post("/v1/admin/users", json::parse(body("x7")));
    EXPECT_EQ(ok.status, 201u) << ok.body;
    // Without an Origin header (some clients omit it) the token alone suffices.
    auto no_origin = admin.call("POST", "/v1/admin/users",
                                admin.with_cookie({{"X-CSRF-Token", admin.csrf}}), body("x8"));
    EXPECT_EQ(no_origin.status, 201u) << no_origin.body;
    EXPECT_EQ(users(), before + 2);
}

TEST(web_session, logout_ends_the_session) {
    web_fixture f;
    browser b(f);
    ASSERT_EQ(b.login("head_a", head_password).status, 200u);
    auto no_token = b.call("POST", "/v1/session/logout", b.with_cookie(), "{}");
    EXPECT_EQ(no_token.status, 403u);
    EXPECT_EQ(b.get("/v1/me").status, 200u);

    auto out = b.post("/v1/session/logout", json::object{});
    ASSERT_EQ(out.status, 200u) << out.body;
    auto set = out.header("Set-Cookie");
    EXPECT_TRUE(set.starts_with("fs_session=;")) << set;
    EXPECT_NE(set.find("Max-Age=0"), std::string::npos) << set;
    EXPECT_EQ(f.count("SELECT count(*) FROM web_sessions"), 0);
    EXPECT_EQ(b.get("/v1/session").status, 401u);
    EXPECT_EQ(b.get("/v1/me").status, 401u);
    EXPECT_EQ(b.post("/v1/session/logout", json::object{}).status, 401u);
}

TEST(web_session, idle_and_old_sessions_expire) {
    web_fixture f;
    browser idle(f), old(f), busy(f);
    ASSERT_EQ(idle.login("head_a", head_password).status, 200u);
    ASSERT_EQ(old.login("admin", admin_password).status, 200u);
    ASSERT_EQ(busy.login("admin", admin_password).status, 200u);
    auto row = [](const browser& b) {
        return "cookie_hash = '" + auth::sha256_hex(b.cookie) + "'";
    };
    // The clock we control is the database's: 31 idle minutes; a session past its 12 hours.
    exec(f.db(),
         "UPDATE web_sessions SET last_seen_ms = last_seen_ms - 31 * 60000 WHERE " + row(idle));
    exec(f.db(), "UPDATE web_sessions SET expires_ms = " + std::to_string(system_wall_ms() - 1) +
                     " WHERE " + row(old));
    auto r = idle.get("/v1/me");
    EXPECT_EQ(r.status, 401u);
    EXPECT_EQ(r.error_code(), "session_expired");
    EXPECT_NE(r.header("Set-Cookie").find("Max-Age=0"), std::string::npos);
    EXPECT_EQ(old.get("/v1/session").error_code(), "session_expired");
    EXPECT_EQ(old.post("/v1/session/logout", json::object{}).status, 401u);

    // Use moves the idle clock: 20 idle minutes, a request, and the session lives on.
    exec(f.db(),
         "UPDATE web_sessions SET last_seen_ms = last_seen_ms - 20 * 60000 WHERE " + row(busy));
    ASSERT_EQ(busy.get("/v1/me").status, 200u);
    // A write through the writer after the touch: once it is answered the touch is committed.
    ASSERT_EQ(busy.post("/v1/admin/users", json::value{{"username", "after_touch"},
                                                       {"role", "field_worker"},
                                                       {"township", town_a}})
                  .status,
              201u);
    EXPECT_EQ(f.count("SELECT count(*) FROM web_sessions WHERE " + row(busy) +
                      " AND last_seen_ms > " + std::to_string(system_wall_ms() - 5 * 60000)),
              1);
    exec(f.db(),
         "UPDATE web_sessions SET last_seen_ms = last_seen_ms - 15 * 60000 WHERE " + row(busy));
    EXPECT_EQ(busy.get("/v1/me").status, 200u); // 15 + a moment < 30 minutes since the touch
    // The next login cleans up what expired.
    browser again(f);
    ASSERT_EQ(again.login("head_a", head_password).status, 200u);
    EXPECT_EQ(f.count("SELECT count(*) FROM web_sessions WHERE " + row(idle) + " OR " + row(old)),
              0);
}

TEST(web_session, a_new_password_or_disabling_ends_the_sessions) {
    web_fixture f;
    browser head(f), admin(f);
    ASSERT_EQ(head.login("head_a", head_password).status, 200u);
    ASSERT_EQ(admin.login("admin", admin_password).status, 200u);
    {
        sql::connection c(f.db() + "/fieldsync.db", sql::open_mode::read_write);
        sql::transaction tx(c);
        ASSERT_TRUE(auth::set_password(c, "head_a", "a-new-password", system_wall_ms()));
        tx.commit();
    }
    EXPECT_EQ(head.get("/v1/me").status, 401u);
    EXPECT_EQ(head.login("head_a", head_password).status, 401u);
    EXPECT_EQ(head.login("head_a", "a-new-password").status, 200u);
    EXPECT_EQ(head.get("/v1/me").status, 200u);
    // A disabled user's session is refused at once (the district admin disables from the page).
    auto disabled = admin.post("/v1/admin/users/head_a/disable", json::object{});
    ASSERT_EQ(disabled.status, 200u) << disabled.body;
    auto refused = head.get("/v1/me");
    EXPECT_EQ(refused.status, 401u);
    EXPECT_EQ(refused.error_code(), "user_disabled");
}

TEST(web_session, settings_are_checked) {
    server::config c;
    std::string why;
    EXPECT_TRUE(server::set(c, "session_idle_s", "600", &why));
    EXPECT_EQ(c.session_idle_s, 600);
    EXPECT_TRUE(server::set(c, "web_origin", "https://district.example", &why));
    for (auto [key, value] :
         {std::pair{"session_idle_s", "0"}, std::pair{"session_max_s", "-1"},
          std::pair{"login_failures_per_user", "x"}, std::pair{"login_failures_per_address", "0"},
          std::pair{"login_window_s", ""}})
        EXPECT_FALSE(server::set(c, key, value, &why)) << key << "=" << value;
}

TEST(web_session, short_session_settings_apply) {
    web_fixture f([](server::config& c) {
        c.session_max_s = 60;
        c.session_idle_s = 30;
    });
    browser b(f);
    auto r = b.login("head_a", head_password);
    ASSERT_EQ(r.status, 200u);
    EXPECT_NE(r.header("Set-Cookie").find("Max-Age=60"), std::string::npos);
    auto expires = r.json.at("expires_ms").as_int64();
    EXPECT_LE(expires, system_wall_ms() + 30000);
    exec(f.db(), "UPDATE web_sessions SET last_seen_ms = last_seen_ms - 31000");
    EXPECT_EQ(b.get("/v1/me").error_code(), "session_expired");
}

TEST(web_session, failed_logins_are_throttled_and_logged_without_the_password) {
    web_fixture f;
    browser b(f);
    const std::string guess = "Guess-Secret-";
    ::testing::internal::CaptureStderr();
    for (int i = 0; i < 5; ++i)
        EXPECT_EQ(b.login("head_a", guess + std::to_string(i)).status, 401u) << i;
    // Now even the right password waits.
    auto limited = b.login("head_a", head_password);
    EXPECT_EQ(b.login("Typed-Password-As-Name", "x-password").status, 401u);
    std::string log = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(limited.status, 429u);
    EXPECT_EQ(limited.error_code(), "rate_limited");
    auto retry = limited.header("Retry-After");
    ASSERT_FALSE(retry.empty());
    EXPECT_GT(std::stoi(retry), 0);
    EXPECT_EQ(f.count("SELECT count(*) FROM web_sessions"), 0);

    std::size_t failures = 0;
    for (auto pos = log.find("\"login_failed\""); pos != std::string::npos;
         pos = log.find("\"login_failed\"", pos + 1))
        ++failures;
    EXPECT_EQ(failures, 6u) << log;
    EXPECT_NE(log.find("\"user\":\"head_a\""), std::string::npos) << log;
    EXPECT_NE(log.find("\"login_throttled\""), std::string::npos) << log;
    EXPECT_NE(log.find("\"client\":\"127.0.0.1\""), std::string::npos) << log;
    EXPECT_EQ(log.find("Guess-Secret"), std::string::npos) << log;
    EXPECT_EQ(log.find(head_password), std::string::npos) << log;
    EXPECT_EQ(log.find("x-password"), std::string::npos) << log;
    // An unknown name is not logged (it may be a password typed into the wrong field).
    EXPECT_EQ(log.find("Typed-Password-As-Name"), std::string::npos) << log;

    // Another user is not locked out by someone else's failures (the address limit is higher).
    browser admin(f);
    EXPECT_EQ(admin.login("admin", admin_password).status, 200u);
}

// Anybody who knows a head's username could keep them off the page by guessing 5 times per
// quarter hour; the browser the head logged in from before is not held back by that.
TEST(web_session, the_heads_own_browser_logs_in_while_somebody_else_locks_the_name) {
    web_fixture f;
    browser office(f);
    ASSERT_EQ(office.login("head_a", head_password).status, 200u);
    ASSERT_FALSE(office.known.empty());
    browser guesser(f);
    for (int i = 0; i < 5; ++i)
        EXPECT_EQ(guesser.login("head_a", "Guess-" + std::to_string(i)).status, 401u) << i;
    EXPECT_EQ(guesser.login("head_a", head_password).status, 429u);

    ::testing::internal::CaptureStderr();
    EXPECT_EQ(office.login("head_a", head_password).status, 200u);
    std::string log = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(log.find(office.known), std::string::npos) << "the cookie is in the log: " << log;
    // Not with another user's cookie, nor a made-up one.
    browser admin_pc(f);
    ASSERT_EQ(admin_pc.login("admin", admin_password).status, 200u);
    EXPECT_EQ(admin_pc.login("head_a", head_password).status, 429u);
    browser forger(f);
    forger.known = "bm9uY2U." + std::string(64, '0');
    EXPECT_EQ(forger.login("head_a", head_password).status, 429u);
    // The known browser's own wrong passwords lock it like a username.
    for (int i = 0; i < 5; ++i)
        EXPECT_EQ(office.login("head_a", "Typo-" + std::to_string(i)).status, 401u) << i;
    EXPECT_EQ(office.login("head_a", head_password).status, 429u);
}

TEST(web_session, one_address_guessing_many_names_is_throttled) {
    web_fixture f([](server::config& c) { c.login_failures_per_address = 3; });
    browser b(f);
    for (const char* name : {"guess1", "guess2", "guess3"})
        EXPECT_EQ(b.login(name, "wrong-password").status, 401u);
    auto r = b.login("head_a", head_password);
    EXPECT_EQ(r.status, 429u);
    EXPECT_FALSE(r.header("Retry-After").empty());
}

TEST(web_session, session_log_lines_never_carry_secrets) {
    web_fixture f([](server::config& c) { c.log_requests = true; });
    ::testing::internal::CaptureStderr();
    browser b(f);
    auto r = b.login("admin", admin_password);
    auto made =
        b.post("/v1/admin/users",
               json::value{{"username", "logged"}, {"role", "field_worker"}, {"township", town_a}});
    auto refused =
        b.call("POST", "/v1/admin/users", b.with_cookie({{"X-CSRF-Token", "bad"}}), "{}");
    auto out = b.post("/v1/session/logout", json::object{});
    std::string log = ::testing::internal::GetCapturedStderr();
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(made.status, 201u);
    EXPECT_EQ(refused.status, 403u);
    EXPECT_EQ(out.status, 200u);
    EXPECT_NE(log.find("\"route\":\"/v1/session\""), std::string::npos) << log;
    EXPECT_NE(log.find("\"csrf_refused\""), std::string::npos) << log;
    for (const std::string& secret :
         {std::string(admin_password), b.cookie, b.csrf, auth::sha256_hex(b.cookie)})
        EXPECT_EQ(log.find(secret), std::string::npos) << secret << " in " << log;
}

TEST(web_session, login_throttle_doubles_its_delay_and_forgets) {
    server::web::login_throttle t({5, 20, 15 * 60000, 30000});
    std::int64_t now = 1'000'000'000;
    for (int i = 1; i <= 4; ++i) {
        EXPECT_EQ(t.failed("u", "a", "", now), i);
        EXPECT_EQ(t.wait_ms("u", "a", "", now), 0);
    }
    EXPECT_EQ(t.failed("u", "a", "", now), 5);
    EXPECT_EQ(t.wait_ms("u", "a", "", now), 30000);
    EXPECT_EQ(t.wait_ms("u", "b", "", now), 30000); // the name is locked from anywhere
    EXPECT_EQ(t.wait_ms("v", "a", "", now), 0);     // the address is not (yet)
    now += 30000;
    EXPECT_EQ(t.wait_ms("u", "a", "", now), 0);
    t.failed("u", "a", "", now);
    EXPECT_EQ(t.wait_ms("u", "a", "", now), 60000);
    now += 60000;
    t.failed("u", "a", "", now);
    EXPECT_EQ(t.wait_ms("u", "a", "", now), 120000);
    // Failures older than the window no longer count.
    now += 16 * 60000;
    EXPECT_EQ(t.wait_ms("u", "a", "", now), 0);
    EXPECT_EQ(t.failed("u", "a", "", now), 1);
    EXPECT_EQ(t.wait_ms("u", "a", "", now), 0);
    // The delay never exceeds the window.
    for (int i = 0; i < 30; ++i)
        t.failed("w", "c", "", now);
    EXPECT_EQ(t.wait_ms("w", "c", "", now), 15 * 60000);
    // A success clears the name, not the address.
    t.succeeded("w", "");
    EXPECT_EQ(t.wait_ms("w", "d", "", now), 0);
    EXPECT_EQ(t.wait_ms("x", "c", "", now), 15 * 60000);
    // IPv6 addresses of one /64 are one client.
    for (int i = 0; i < 20; ++i)
        t.failed("n" + std::to_string(i), "2001:db8:1:2::" + std::to_string(i + 1), "", now);
    EXPECT_GT(t.wait_ms("y", "2001:db8:1:2:ffff::1", "", now), 0);
    EXPECT_EQ(t.wait_ms("y", "2001:db8:1:3::1", "", now), 0);
}

TEST(web_session, a_known_browser_is_not_held_back_by_its_users_lock_only_by_its_own) {
    server::web::login_throttle t({5, 20, 15 * 60000, 30000});
    std::int64_t now = 1'000'000'000;
    for (int i = 0; i < 5; ++i)
        t.failed("head", "attacker", "", now);
    EXPECT_GT(t.wait_ms("head", "elsewhere", "", now), 0);    // locked for unknown browsers
    EXPECT_EQ(t.wait_ms("head", "office", "nonce1", now), 0); // not for the head's own
    for (int i = 1; i <= 4; ++i)
        EXPECT_EQ(t.failed("head", "office", "nonce1", now), i); // counted for the browser
    EXPECT_EQ(t.wait_ms("head", "office", "nonce1", now), 0);
    EXPECT_EQ(t.failed("head", "office", "nonce1", now), 5);
    EXPECT_EQ(t.wait_ms("head", "office", "nonce1", now), 30000);
    EXPECT_EQ(t.wait_ms("head", "home", "nonce2", now), 0); // another of the head's browsers
    // A success from a known browser clears that browser, never the username's lock, which
    // would hand the guesser new tries.
    t.succeeded("head", "nonce2");
    EXPECT_GT(t.wait_ms("head", "elsewhere", "", now), 0);
    // The address limit holds whatever the cookie.
    for (int i = 0; i < 20; ++i)
        t.failed("n" + std::to_string(i), "shared", "", now);
    EXPECT_GT(t.wait_ms("head", "shared", "nonce2", now), 0);
}

TEST(web_session, a_known_browser_value_is_valid_only_for_its_user_and_key) {
    using namespace server::web;
    auto v = make_known_browser("key-1", "head_a");
    auto nonce = known_browser_of("key-1", v, "head_a");
    EXPECT_FALSE(nonce.empty());
    EXPECT_TRUE(v.starts_with(nonce + "."));
    EXPECT_NE(make_known_browser("key-1", "head_a"), v); // a nonce of its own each time
    EXPECT_EQ(known_browser_of("key-1", v, "head_b"), "");
    EXPECT_EQ(known_browser_of("key-1", v, "Head_a"), "");
    EXPECT_EQ(known_browser_of("key-2", v, "head_a"), "");
    auto forged = v;
    forged.back() = forged.back() == '0' ? '1' : '0';
    EXPECT_EQ(known_browser_of("key-1", forged, "head_a"), "");
    for (const char* bad : {"", ".", "abc", ".abc", "abc.", "a.b.c"})
        EXPECT_EQ(known_browser_of("key-1", bad, "head_a"), "") << bad;
    auto header = set_known_cookie_header(v);
    EXPECT_TRUE(header.starts_with("fs_known=" + v + ";")) << header;
    for (const char* attr : {"; HttpOnly", "; Secure", "; SameSite=Strict", "; Path=/v1/session"})
        EXPECT_NE(header.find(attr), std::string::npos) << attr << " missing in " << header;
}

TEST(web_session, cookie_and_origin_parsing) {
    using namespace server::web;
    EXPECT_EQ(cookie_value("fs_session=abc", "fs_session"), "abc");
    EXPECT_EQ(cookie_value("a=1; fs_session=abc; b=2", "fs_session"), "abc");
    EXPECT_EQ(cookie_value("xfs_session=abc; fs_session=def", "fs_session"), "def");
    EXPECT_EQ(cookie_value("a=1", "fs_session"), "");
    EXPECT_EQ(cookie_value("", "fs_session"), "");
    EXPECT_TRUE(same_origin("https://127.0.0.1:8443", "127.0.0.1:8443", ""));
    EXPECT_TRUE(same_origin("HTTPS://District.Example", "district.example", ""));
    EXPECT_FALSE(same_origin("http://127.0.0.1:8443", "127.0.0.1:8443", ""));
    EXPECT_FALSE(same_origin("https://127.0.0.1:8443.evil", "127.0.0.1:8443", ""));
    EXPECT_FALSE(same_origin("null", "127.0.0.1:8443", ""));
    EXPECT_FALSE(same_origin("https://x", "", ""));
    EXPECT_TRUE(
        same_origin("https://fieldsync.example", "10.0.0.5:8443", "https://fieldsync.example"));
}

// ---- What the page reads ----

// A township with records in two villages, synced by a field worker's tablet in October 2026.
struct district_page : web_fixture {
    tablet_login worker = enrol("fw_a");
    replica tablet{":memory:", catalog::builtin(), worker.device};
    browser head{*this}, admin{*this};
    explicit district_page(std::function<void(server::config&)> tweak = {})
        : web_fixture(std::move(tweak)) {
        auto p1 = *tablet.create("person",
                                 person(town_a, village_a1, "1985-03-12", true, "unemployed", 1));
        auto p2 = *tablet.create("person",
                                 person(town_a, village_a2, "1980-01-02", true, "unemployed", 2));
        auto p3 = *tablet.create("person",
                                 person(town_a, village_a2, "1990-05-06", false, "unemployed", 3));
        (void)*tablet.create("person",
                             person(town_a, village_a1, "1982-07-08", true, "employed", 4));
        (void)*tablet.create("home_visit",
                             visit(town_a, village_a1, p1, "2026-10-10T10:00:00+08:00", true));
        (void)*tablet.create("home_visit",
                             visit(town_a, village_a2, p2, "2026-10-12T10:00:00+08:00", true));
        (void)*tablet.create("home_visit",
                             visit(town_a, village_a2, p3, "2026-10-13T10:00:00+08:00", false));
        (void)*tablet.create("employment_service", {{"township", town_a},
                                                    {"village", village_a2},
                                                    {"person", p2.to_string()},
                                                    {"service_type", "skills_training"},
                                                    {"delivered_at", "2026-10-05"}});
        auto c = client();
        sync_over(*c, tablet, worker.token);
        if (head.login("head_a", head_password).status != 200 ||
            admin.login("admin", admin_password).status != 200)
            throw std::runtime_error("login");
    }
};

std::int64_t num(const json::value& o, std::string_view key) {
    return o.at(key).as_int64();
}

TEST(web_api, overview_villages_add_up_to_the_township_rollup) {
    district_page d;
    auto r = d.head.get("/v1/review/overview?month=2026-10");
    ASSERT_EQ(r.status, 200u) << r.body;
    const auto& o = r.json.as_object();
    EXPECT_EQ(o.at("township").as_string(), town_a);
    EXPECT_EQ(o.at("month").as_string(), "2026-10");
    EXPECT_EQ(num(o, "four_ones_base"), 3); // p4 is employed
    EXPECT_EQ(num(o, "verified"), 2);       // p3's visit did not verify
    EXPECT_EQ(num(o, "served"), 1);
    EXPECT_DOUBLE_EQ(o.at("coverage").at("verified").as_double(), 66.7);
    EXPECT_EQ(num(o.at("live"), "home_visits"), 3);
    EXPECT_EQ(num(o, "open_conflicts"), 0);
    EXPECT_EQ(num(o, "quarantined"), 0);
    EXPECT_EQ(num(o, "awaiting_review"), 8);
    EXPECT_FALSE(o.at("approved").as_bool());

    // The township's figures are those of GET /v1/rollups/{month}, and the villages add up to
    // them (every record here names a village).
    auto rollup = d.head.get("/v1/rollups/2026-10");
    ASSERT_EQ(rollup.status, 200u);
    const auto& live = rollup.json.at("townships").as_array()[0].at("live").as_object();
    EXPECT_EQ(o.at("live").as_object(), live);
    const auto& villages = o.at("villages").as_array();
    ASSERT_EQ(villages.size(), 2u);
    EXPECT_EQ(villages[0].at("village").as_string(), village_a1);
    EXPECT_EQ(villages[0].at("name").as_string(), village_a1); // the seeded name is the code
    for (const char* indicator :
         {"home_visits", "four_ones_base", "four_ones_verified", "four_ones_assessed",
          "four_ones_registered", "four_ones_served", "monitoring_checks", "late_records"}) {
        std::int64_t sum = 0;
        for (const auto& v : villages)
            sum += num(v.at("live"), indicator);
        EXPECT_EQ(sum, num(live, indicator)) << indicator;
    }
    EXPECT_EQ(num(villages[0], "four_ones_base"), 1);
    EXPECT_EQ(num(villages[1], "four_ones_base"), 2);
    EXPECT_EQ(num(villages[1], "served"), 1);
    EXPECT_DOUBLE_EQ(villages[1].at("coverage").at("served").as_double(), 50.0);

    // After approval the overview says so.
    ASSERT_EQ(d.head.post("/v1/rollups/2026-10/approve", json::object{}).status, 200u);
    auto approved = d.head.get("/v1/review/overview?month=2026-10");
    EXPECT_TRUE(approved.json.at("approved").as_bool());
    EXPECT_EQ(num(approved.json, "revision"), 1);
    EXPECT_FALSE(approved.json.at("changed_since_approval").as_bool());
}

// The push of October's first records only marks October as being opened; fieldsyncd counts
// its persons a slice at a time between pushes (here one person per slice), without anybody
// asking for the figures.
TEST(web_api, a_month_a_push_opens_is_counted_between_pushes_without_being_asked_for) {
    district_page d([](server::config& c) { c.month_slice_persons = 1; });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (d.count("SELECT count(*) FROM rollup_months WHERE month = '2026-10'") == 0 &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(d.count("SELECT count(*) FROM rollup_months WHERE month = '2026-10'"), 1);
    EXPECT_EQ(d.count("SELECT count(*) FROM rollup_opening"), 0);
    EXPECT_EQ(d.count(std::string("SELECT value FROM rollups WHERE township = '") + town_a +
                      "' AND month = '2026-10' AND indicator = 'four_ones_base'"),
              3); // p4 is employed
}

// What the district admin reports upward is complete: a month no record has touched (or one
// still being counted) is computed before its report is given.
TEST(web_api, the_report_of_a_month_nobody_opened_yet_counts_its_persons) {
    // Counted one person per writer job (pushes would go on between them) before the answer.
    district_page d([](server::config& c) { c.month_slice_persons = 1; });
    auto report = d.admin.get("/v1/rollups/2026-09");
    ASSERT_EQ(report.status, 200u) << report.body;
    EXPECT_EQ(num(report.json.at("total"), "four_ones_base"), 3);
    EXPECT_EQ(d.count("SELECT count(*) FROM rollup_months WHERE month = '2026-09'"), 1);
    auto csv = d.admin.get("/v1/rollups/2026-08/export?format=csv");
    ASSERT_EQ(csv.status, 200u);
    EXPECT_EQ(d.count("SELECT count(*) FROM rollup_months WHERE month = '2026-08'"), 1);
    EXPECT_EQ(d.admin.get("/v1/rollups/2026-08/export?format=pdf").status, 400u);
}

// Asking for a far-off month must not make the server count every person into it and keep it
// up to date for good: months nobody's records opened are computed on request only from ten
// years back to the current month, and a refused request changes nothing.
TEST(web_api, figures_of_months_far_from_now_are_refused_without_opening_them) {
    district_page d;
    const auto opened = [&] {
        return d.count("SELECT count(*) FROM rollup_months") +
               d.count("SELECT count(*) FROM rollup_opening");
    };
    const auto before = opened();
    for (const char* path :
         {"/v1/rollups/2099-01", "/v1/rollups/1990-05/export?format=csv",
          "/v1/review/overview?month=2099-01", "/v1/rollups/trend?from=2026-01&to=2028-12"}) {
        auto r = d.head.get(path);
        EXPECT_EQ(r.status, 400u) << path << " " << r.body;
        EXPECT_NE(r.body.find("computed on request for"), std::string::npos) << r.body;
    }
    EXPECT_EQ(d.head.post("/v1/rollups/2099-01/approve", json::object{}).status, 400u);
    EXPECT_EQ(opened(), before);
    // The months of the records are read as ever.
    EXPECT_EQ(d.head.get("/v1/rollups/2026-10").status, 200u);
}

TEST(web_api, overview_is_scoped_and_opens_months_it_is_asked_for) {
    district_page d;
    // A month no record has touched yet: opened on the way (the persons were there at its end,
    // not yet visited), both villages listed.
    EXPECT_EQ(d.count("SELECT count(*) FROM rollup_months WHERE month = '2026-09'"), 0);
    auto empty = d.head.get("/v1/review/overview?month=2026-09");
    ASSERT_EQ(empty.status, 200u) << empty.body;
    EXPECT_EQ(num(empty.json, "four_ones_base"), 3);
    EXPECT_EQ(num(empty.json, "verified"), 0);
    EXPECT_EQ(num(empty.json.at("live"), "home_visits"), 0);
    EXPECT_EQ(empty.json.at("villages").as_array().size(), 2u);
    EXPECT_DOUBLE_EQ(empty.json.at("coverage").at("verified").as_double(), 0.0);
    EXPECT_EQ(d.count("SELECT count(*) FROM rollup_months WHERE month = '2026-09'"), 1);
    auto rollup = d.head.get("/v1/rollups/2026-09");
    EXPECT_EQ(empty.json.at("live"), rollup.json.at("townships").as_array()[0].at("live"));
    // A township without persons: its village is listed, and no coverage (not 0 %).
    auto none = d.admin.get(std::string("/v1/review/overview?month=2026-09&township=") + town_b);
    ASSERT_EQ(none.status, 200u);
    EXPECT_TRUE(none.json.at("coverage").at("verified").is_null());
    EXPECT_EQ(none.json.at("villages").as_array().size(), 1u);
    EXPECT_EQ(d.count("SELECT count(*) FROM rollup_months WHERE month = '2026-09'"), 1);

    EXPECT_EQ(d.head.get("/v1/review/overview?month=2026-13").status, 400u);
    EXPECT_EQ(d.head.get("/v1/review/overview").status, 400u);
    EXPECT_EQ(
        d.head.get(std::string("/v1/review/overview?month=2026-10&township=") + town_b).status,
        404u);
    EXPECT_EQ(d.admin.get("/v1/review/overview?month=2026-10").status, 400u);
    EXPECT_EQ(d.admin.get("/v1/review/overview?month=2026-10&township=500101009").status, 404u);
    auto other = d.admin.get(std::string("/v1/review/overview?month=2026-10&township=") + town_b);
    ASSERT_EQ(other.status, 200u);
    EXPECT_EQ(num(other.json, "four_ones_base"), 0);
    auto mine = d.admin.get(std::string("/v1/review/overview?month=2026-10&township=") + town_a);
    EXPECT_EQ(num(mine.json, "four_ones_base"), 3);
    // Tablet tokens of field workers get nothing; a head's token works like the cookie.
    auto c = d.client();
    EXPECT_EQ(c->get("/v1/review/overview?month=2026-10", d.worker.token).status, 403u);
    auto head_tablet = d.enrol("head_a");
    EXPECT_EQ(c->get("/v1/review/overview?month=2026-10", head_tablet.token).body,
              d.head.get("/v1/review/overview?month=2026-10").body);
}

TEST(web_api, trend_gives_monthly_totals) {
    district_page d;
    auto r = d.admin.get("/v1/rollups/trend?from=2026-09&to=2026-11");
    ASSERT_EQ(r.status, 200u) << r.body;
    const auto& months = r.json.at("months").as_array();
    ASSERT_EQ(months.size(), 3u);
    EXPECT_EQ(months[1].at("month").as_string(), "2026-10");
    EXPECT_EQ(num(months[1].at("total"), "four_ones_base"), 3);
    EXPECT_EQ(num(months[1].at("total"), "home_visits"), 3);
    EXPECT_EQ(num(months[0].at("total"), "home_visits"), 0);
    EXPECT_EQ(months[1].at("townships").as_array().size(), 2u);
    // The same figures as the month report.
    auto report = d.admin.get("/v1/rollups/2026-10");
    EXPECT_EQ(months[1].at("total"), report.json.at("total"));

    auto head = d.head.get("/v1/rollups/trend?from=2026-10&to=2026-10");
    ASSERT_EQ(head.status, 200u);
    ASSERT_EQ(head.json.at("months").as_array().size(), 1u);
    EXPECT_EQ(num(head.json.at("months").as_array()[0].at("total"), "four_ones_base"), 3);
    EXPECT_EQ(head.json.at("months").as_array()[0].as_object().if_contains("townships"), nullptr);
    for (const char* bad : {"from=2026-11&to=2026-10", "from=2026-10", "from=2023-01&to=2026-10",
                            "from=2026-00&to=2026-10"})
        EXPECT_EQ(d.admin.get(std::string("/v1/rollups/trend?") + bad).status, 400u) << bad;
}

TEST(web_api, enrolment_codes_come_with_a_qr_code) {
    district_page d;
    auto r = d.admin.post("/v1/admin/enrolment-codes", json::value{{"username", "fw_a2"}});
    ASSERT_EQ(r.status, 201u) << r.body;
    auto code = std::string(r.json.at("code").as_string());
    EXPECT_EQ(r.json.at("qr_text").as_string(),
              "fieldsync:enrol?code=" + code + "&server=" + d.admin.origin());
    std::string svg(r.json.at("qr_svg").as_string());
    EXPECT_TRUE(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\"")) << svg;
    EXPECT_TRUE(svg.ends_with("</svg>"));
    EXPECT_NE(svg.find("<path"), std::string::npos);
    // The code still works once: a tablet can enrol with it.
    auto c = d.client();
    auto enrolled = c->post("/v1/enrol", json::value{{"code", code}, {"label", "scanned"}});
    ASSERT_EQ(enrolled.status, 200u);
    // The tablets page lists it (and the worker's), and can revoke it.
    auto devices = d.admin.get("/v1/admin/devices");
    ASSERT_EQ(devices.status, 200u);
    std::vector<std::string> listed;
    for (const auto& t : devices.json.at("devices").as_array())
        listed.emplace_back(t.at("device").as_string());
    auto device = std::string(enrolled.json.at("device").as_string());
    EXPECT_NE(std::find(listed.begin(), listed.end(), device), listed.end()) << devices.body;
    EXPECT_NE(std::find(listed.begin(), listed.end(), d.worker.device), listed.end());
    auto revoked = d.admin.post("/v1/admin/devices/" + device + "/revoke", json::object{});
    ASSERT_EQ(revoked.status, 200u);
    EXPECT_FALSE(revoked.json.at("revoked_ms").is_null());
    auto token = std::string(enrolled.json.at("token").as_string());
    EXPECT_EQ(c->get("/v1/me", token).error_code(), "device_revoked");
}

TEST(web_api, divisions_and_catalog_for_the_page) {
    district_page d;
    auto head = d.head.get("/v1/divisions");
    ASSERT_EQ(head.status, 200u) << head.body;
    std::vector<std::string> codes;
    for (const auto& v : head.json.at("divisions").as_array())
        codes.emplace_back(v.at("code").as_string());
    EXPECT_EQ(codes, (std::vector<std::string>{town_a, village_a1, village_a2}));
    EXPECT_EQ(d.admin.get("/v1/divisions").json.at("divisions").as_array().size(), 6u);
    auto c = d.client();
    EXPECT_EQ(c->get("/v1/divisions", d.worker.token).status, 403u);

    auto cat = d.head.get("/v1/catalog");
    ASSERT_EQ(cat.status, 200u);
    const auto& person_fields = cat.json.at("collections").at("person").at("fields");
    EXPECT_TRUE(person_fields.at("id_number").at("personal").as_bool());
    EXPECT_FALSE(person_fields.at("id_number").at("label").at("zh").as_string().empty());
    EXPECT_EQ(person_fields.at("gender").at("value_labels").at("male").at("zh").as_string(), "男");
    EXPECT_EQ(person_fields.at("gender").at("value_labels").at("female").at("en").as_string(),
              "Female");
    EXPECT_EQ(cat.json.at("collections").at("home_visit").at("date_field").as_string(),
              "visited_at");
    EXPECT_FALSE(cat.json.at("indicators").at("four_ones_base").at("zh").as_string().empty());
}

// ---- The page itself ----

TEST(web_page, index_and_assets_carry_the_security_headers) {
    web_fixture f;
    browser b(f);
    auto index = b.get("/");
    ASSERT_EQ(index.status, 200u) << index.body;
    EXPECT_TRUE(index.content_type.starts_with("text/html")) << index.content_type;
    EXPECT_NE(index.body.find("<html"), std::string::npos);
    EXPECT_EQ(index.header("Content-Security-Policy"),
              "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
              "frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
    EXPECT_EQ(index.header("X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(index.header("Referrer-Policy"), "no-referrer");
    EXPECT_EQ(index.header("Cache-Control"), "no-cache");
    auto etag = index.header("ETag");
    ASSERT_FALSE(etag.empty());
    EXPECT_EQ(b.get("/app/index.html").body, index.body);

    auto same = b.call("GET", "/", {{"If-None-Match", etag}});
    EXPECT_EQ(same.status, 304u);
    EXPECT_TRUE(same.body.empty());
    EXPECT_EQ(b.call("GET", "/", {{"If-None-Match", "\"other\""}}).status, 200u);

    auto zipped = b.call("GET", "/", {{"Accept-Encoding", "gzip, deflate, br"}});
    EXPECT_EQ(zipped.status, 200u);
    if (zipped.header("Content-Encoding") == "gzip") {
        EXPECT_EQ(zipped.header("Vary"), "Accept-Encoding");
        EXPECT_NE(zipped.header("ETag"), etag);
        EXPECT_LT(zipped.body.size(), index.body.size());
    }
}

std::string gunzip(std::string_view data) {
    z_stream z{};
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        return {};
    std::string out;
    char buf[65536];
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    int rc = Z_OK;
    while (rc == Z_OK) {
        z.next_out = reinterpret_cast<Bytef*>(buf);
        z.avail_out = sizeof buf;
        rc = inflate(&z, Z_NO_FLUSH);
        out.append(buf, sizeof buf - z.avail_out);
    }
    inflateEnd(&z);
    return rc == Z_STREAM_END ? out : std::string("(corrupt)");
}

TEST(web_page, every_file_of_server_web_is_served_as_it_is) {
    web_fixture f;
    browser b(f);
    std::size_t served = 0, zipped = 0;
    for (const auto& file : web_files::files()) {
        std::string name(file.name);
        if (name.starts_with(".") || name.find("/.") != std::string::npos)
            continue;
        auto plain = b.get("/app/" + name);
        ASSERT_EQ(plain.status, 200u) << name;
        EXPECT_EQ(plain.body, file.data) << name;
        EXPECT_FALSE(plain.content_type.empty()) << name;
        if (name.ends_with(".js")) {
            EXPECT_EQ(plain.content_type, "text/javascript; charset=utf-8");
        }
        if (name.ends_with(".css")) {
            EXPECT_EQ(plain.content_type, "text/css; charset=utf-8");
        }
        EXPECT_FALSE(plain.header("Content-Security-Policy").empty()) << name;
        ++served;
        auto gz = b.call("GET", "/app/" + name, {{"Accept-Encoding", "gzip"}});
        ASSERT_EQ(gz.status, 200u);
        if (gz.header("Content-Encoding") == "gzip") {
            ++zipped;
            EXPECT_EQ(gunzip(gz.body), file.data) << name;
            EXPECT_LT(gz.body.size(), file.data.size());
            // The compressed answer revalidates too.
            EXPECT_EQ(b.call("GET", "/app/" + name,
                             {{"Accept-Encoding", "gzip"}, {"If-None-Match", gz.header("ETag")}})
                          .status,
                      304u);
        }
    }
    EXPECT_GE(served, 1u);
    // Every text file worth compressing is compressed (the page's scripts are kilobytes).
    std::size_t big_text = 0;
    for (const auto& file : web_files::files())
        if (file.data.size() > 4096 && (file.name.ends_with(".js") || file.name.ends_with(".css") ||
                                        file.name.ends_with(".html")))
            ++big_text;
    EXPECT_GE(zipped, big_text);
}

TEST(web_page, only_embedded_files_are_served) {
    web_fixture f;
    browser b(f);
    for (const char* path :
         {"/app/no-such-file.js", "/app/", "/app/../server.cpp", "/app/..%2fserver.cpp",
          "/app/%2e%2e/CMakeLists.txt", "/app/.hidden", "/app//index.html", "/app/web/index.html",
          "/app/index.html%00.js", "/app/./index.html", "/index.html", "/app/INDEX.HTML"}) {
        auto r = b.get(path);
        EXPECT_EQ(r.status, 404u) << path;
        EXPECT_EQ(r.header("X-Content-Type-Options"), "nosniff") << path;
    }
    auto post = b.call("POST", "/", {}, "{}");
    EXPECT_EQ(post.status, 405u);
    // The API around it still answers as before.
    EXPECT_EQ(b.get("/v1/healthz").status, 200u);
    EXPECT_EQ(b.get("/v2/anything").status, 404u);
}

} // namespace
} // namespace fieldsync
