// Web sessions of township heads and district admins (docs/protocol.md, "Web sessions and the
// web page"): the fs_session cookie, its CSRF token, idle and absolute expiry, and the throttle
// on failed logins. The store functions own the table of schema/migrations/0004_web.sql.
//
// The cookie value is 256 random bits and is stored only as its SHA-256 (like device tokens);
// a session authenticates exactly like a bearer token of its user. Every state-changing request
// made with the cookie must carry the session's CSRF token in X-CSRF-Token.
//
// Thread-safety: the store functions are free functions over a caller-owned connection (writes
// on the writer thread, reads on a reader). login_throttle is internally locked.
#pragma once

#include "server/auth.hpp"
#include "sync/sqlite.hpp"

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace fieldsync::server::web {

inline constexpr std::string_view cookie_name = "fs_session";

struct session_limits {
    std::int64_t idle_ms = 30 * 60 * 1000;     // no request for this long: expired
    std::int64_t max_ms = 12 * 60 * 60 * 1000; // after this long: expired, however busy
};

// A new session, as given to the browser once.
struct new_session {
    std::string cookie;     // the fs_session value (never stored, never logged)
    std::string csrf_token; // sent back in X-CSRF-Token
    std::int64_t expires_ms = 0;
};

// A live session and its user.
struct session_info {
    auth::user user;
    std::string cookie_hash;
    std::string csrf_token;
    std::int64_t created_ms = 0;
    std::int64_t last_seen_ms = 0;
    std::int64_t expires_ms = 0; // when it ends if idle from now on: min(idle end, absolute end)
};

// --- writes (writer thread) ---

// Stores a new session of `username` (who must exist); also deletes every expired session.
new_session create_session(sql::connection& c, std::string_view username, std::int64_t now_ms,
                           const session_limits& limits);
// Moves the idle expiry forward.
void touch_session(sql::connection& c, std::string_view cookie_hash, std::int64_t now_ms);
// Deletes one session (logout, or found expired).
void end_session(sql::connection& c, std::string_view cookie_hash);

// --- reads (reader thread) ---

// The session of a cookie value. Unknown cookie: unauthorized; expired (idle or absolute):
// errc::expired "session_expired"; disabled user: "user_disabled". The caller deletes an expired
// session (the reader cannot write); `expired_hash` receives its hash then.
auth::outcome<session_info> find_session(sql::connection& c, std::string_view cookie,
                                         std::int64_t now_ms, const session_limits& limits,
                                         std::string* expired_hash = nullptr);

// --- HTTP helpers (pure) ---

// The value of cookie `name` in a Cookie header, or "".
std::string cookie_value(std::string_view header, std::string_view name);
// Set-Cookie for the session; an empty value with max_age 0 clears it.
std::string set_cookie_header(std::string_view value, std::int64_t max_age_s);
// True if an Origin header names this server: https://<Host header>, or `configured` when set.
bool same_origin(std::string_view origin, std::string_view host, std::string_view configured);
// Constant-time comparison of two secrets (false if the lengths differ).
bool secrets_equal(std::string_view a, std::string_view b);

// "This browser has logged in as <user> before" (a device cookie, as OWASP's authentication
// cheat sheet describes them): given at every successful login, sent back by the browser only to
// /v1/session. An attempt that carries a valid one for the username typed is not held back by
// that username's lock, which anybody who knows the name can set off by guessing, only by the
// cookie's own failures and its address's: the head keeps logging in from their usual browser
// while somebody guesses their password elsewhere. Value: "<nonce>.<mac>", a random nonce and
// HMAC-SHA-256(key, username + nonce); nothing is stored. Not a credential: the password is
// still needed.
inline constexpr std::string_view known_cookie_name = "fs_known";
inline constexpr std::int64_t known_cookie_max_age_s = 400LL * 24 * 60 * 60;
std::string make_known_browser(std::string_view key, std::string_view username);
// The cookie's nonce if `value` is a known-browser value for `username` under `key`, or "".
std::string known_browser_of(std::string_view key, std::string_view value,
                             std::string_view username);
// Set-Cookie for the known-browser value: a year and a month, only for /v1/session.
std::string set_known_cookie_header(std::string_view value);

// Failed logins per username and per client address. After `per_user` failures of one username
// (or `per_address` from one address) within `window_ms`, further attempts are refused for a
// delay that doubles with every failure beyond the limit (30 s, 60 s, … up to the window), so a
// guesser gets a handful of tries per quarter hour while a colleague who mistyped is not locked
// out for long. An attempt from a known browser (its nonce given as `browser`) is counted and
// locked under that browser instead of the username. Times are passed in so that tests control
// the clock.
//
// Thread-safety: all members may be called from any thread.
class login_throttle {
public:
    struct settings {
        int per_user = 5;
        int per_address = 20;
        std::int64_t window_ms = 15 * 60 * 1000;
        std::int64_t first_delay_ms = 30 * 1000;
    };
    explicit login_throttle(settings s) : settings_(s) {}

    // 0 if an attempt may proceed; otherwise the milliseconds to wait.
    std::int64_t wait_ms(std::string_view user, std::string_view address, std::string_view browser,
                         std::int64_t now_ms);
    // Records a failure; returns the failures of the username (of the browser, for a known
    // browser) within the window, this one included.
    int failed(std::string_view user, std::string_view address, std::string_view browser,
               std::int64_t now_ms);
    // A successful login clears the failures of the username (of the browser, for a known
    // browser), not the address's.
    void succeeded(std::string_view user, std::string_view browser);

private:
    struct entry {
        std::deque<std::int64_t> failures; // times within the window, oldest first
        std::int64_t locked_until = 0;
    };
    using table = std::unordered_map<std::string, entry>;
    int record(table& t, const std::string& key, int limit, std::int64_t now_ms);
    std::int64_t wait_of(table& t, const std::string& key, std::int64_t now_ms);
    void prune(table& t, std::int64_t now_ms);

    settings settings_;
    std::mutex mutex_;
    table users_;     // guarded by mutex_
    table addresses_; // guarded by mutex_
    table browsers_;  // guarded by mutex_
};

} // namespace fieldsync::server::web
