#include "server/web_session.hpp"

#include "server/throttle.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>

namespace fieldsync::server::web {

namespace {

template <class T>
auth::outcome<T> fail(errc code, std::string wire, std::string message) {
    auth::outcome<T> o;
    o.error = {code, std::move(wire), std::move(message)};
    return o;
}

bool ieq(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

} // namespace

new_session create_session(sql::connection& c, std::string_view username, std::int64_t now_ms,
                           const session_limits& limits) {
    {
        // Expired sessions are dead weight (and would be refused anyway): drop them here, where
        // a write happens in any case.
        auto s = c.cached("DELETE FROM web_sessions WHERE expires_ms <= ? OR last_seen_ms <= ?");
        s->bind_all(now_ms, now_ms - limits.idle_ms);
        s->run();
    }
    new_session out;
    out.cookie = auth::random_secret();
    out.csrf_token = auth::random_secret();
    std::int64_t absolute = now_ms + limits.max_ms;
    out.expires_ms = std::min(absolute, now_ms + limits.idle_ms);
    auto s = c.cached("INSERT INTO web_sessions(cookie_hash, username, csrf_token, created_ms, "
                      "expires_ms, last_seen_ms) VALUES(?, ?, ?, ?, ?, ?)");
    s->bind_all(auth::sha256_hex(out.cookie), username, out.csrf_token, now_ms, absolute, now_ms);
    s->run();
    return out;
}

void touch_session(sql::connection& c, std::string_view cookie_hash, std::int64_t now_ms) {
    auto s = c.cached("UPDATE web_sessions SET last_seen_ms = max(last_seen_ms, ?) "
                      "WHERE cookie_hash = ?");
    s->bind_all(now_ms, cookie_hash);
    s->run();
}

void end_session(sql::connection& c, std::string_view cookie_hash) {
    auto s = c.cached("DELETE FROM web_sessions WHERE cookie_hash = ?");
    s->bind_all(cookie_hash);
    s->run();
}

auth::outcome<session_info> find_session(sql::connection& c, std::string_view cookie,
                                         std::int64_t now_ms, const session_limits& limits,
                                         std::string* expired_hash) {
    auto unknown = [] {
        return fail<session_info>(errc::unauthorized, "unauthorized",
                                  "log in first (no valid session)");
    };
    if (cookie.size() < 16 || cookie.size() > 200)
        return unknown();
    std::string hash = auth::sha256_hex(cookie);
    auto s = c.cached("SELECT cookie_hash, username, csrf_token, created_ms, expires_ms, "
                      "last_seen_ms FROM web_sessions WHERE cookie_hash = ?");
    s->bind_all(hash);
    if (!s->step())
        return unknown();
    auto stored = s->text(0);
    if (!secrets_equal(stored, hash))
        return unknown();
    session_info info;
    info.cookie_hash = hash;
    std::string username(s->text(1));
    info.csrf_token = std::string(s->text(2));
    info.created_ms = s->int64(3);
    std::int64_t absolute = s->int64(4);
    info.last_seen_ms = s->int64(5);
    s->reset();
    if (now_ms >= absolute || now_ms >= info.last_seen_ms + limits.idle_ms) {
        if (expired_hash)
            *expired_hash = hash;
        return fail<session_info>(errc::expired, "session_expired",
                                  "the session has expired; log in again");
    }
    auto u = auth::find_user(c, username);
    if (!u)
        return unknown();
    if (u->disabled)
        return fail<session_info>(errc::unauthorized, "user_disabled",
                                  "this user is disabled; contact the district office");
    info.user = std::move(*u);
    info.expires_ms = std::min(absolute, now_ms + limits.idle_ms);
    return {std::move(info), {}};
}

std::string cookie_value(std::string_view header, std::string_view name) {
    while (!header.empty()) {
        auto semi = header.find(';');
        auto part = header.substr(0, semi);
        while (!part.empty() && (part.front() == ' ' || part.front() == '\t'))
            part.remove_prefix(1);
        auto eq = part.find('=');
        if (eq != std::string_view::npos && part.substr(0, eq) == name) {
            auto v = part.substr(eq + 1);
            while (!v.empty() && (v.back() == ' ' || v.back() == '\t'))
                v.remove_suffix(1);
            if (v.size() >= 2 && v.front() == '"' && v.back() == '"')
                v = v.substr(1, v.size() - 2);
            return std::string(v);
        }
        if (semi == std::string_view::npos)
            break;
        header.remove_prefix(semi + 1);
    }
    return {};
}

std::string set_cookie_header(std::string_view value, std::int64_t max_age_s) {
    return std::string(cookie_name) + "=" + std::string(value) +
           "; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=" + std::to_string(max_age_s);
}

bool same_origin(std::string_view origin, std::string_view host, std::string_view configured) {
    if (!configured.empty() && ieq(origin, configured))
        return true;
    constexpr std::string_view scheme = "https://";
    if (host.empty() || origin.size() != scheme.size() + host.size())
        return false;
    return ieq(origin.substr(0, scheme.size()), scheme) && ieq(origin.substr(scheme.size()), host);
}

bool secrets_equal(std::string_view a, std::string_view b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// ---- known browsers ----

std::string make_known_browser(std::string_view key, std::string_view username) {
    std::string nonce = auth::random_secret();
    return nonce + "." + auth::hmac_sha256_hex(key, std::string(username) + "\n" + nonce);
}

std::string known_browser_of(std::string_view key, std::string_view value,
                             std::string_view username) {
    auto dot = value.find('.');
    if (value.size() > 200 || dot == std::string_view::npos || dot == 0)
        return {};
    auto nonce = value.substr(0, dot);
    auto expected = auth::hmac_sha256_hex(key, std::string(username) + "\n" + std::string(nonce));
    return secrets_equal(value.substr(dot + 1), expected) ? std::string(nonce) : std::string();
}

std::string set_known_cookie_header(std::string_view value) {
    return std::string(known_cookie_name) + "=" + std::string(value) +
           "; HttpOnly; Secure; SameSite=Strict; Path=/v1/session; Max-Age=" +
           std::to_string(known_cookie_max_age_s);
}

// ---- login_throttle ----

void login_throttle::prune(table& t, std::int64_t now_ms) {
    // Bounded memory whatever the names tried: forget entries with nothing left to remember.
    if (t.size() < 4096)
        return;
    std::erase_if(t, [&](const auto& kv) {
        const auto& e = kv.second;
        return e.locked_until <= now_ms &&
               (e.failures.empty() || e.failures.back() <= now_ms - settings_.window_ms);
    });
    if (t.size() >= 100000)
        t.clear(); // a flood of distinct names: the address limit still holds
}

std::int64_t login_throttle::wait_of(table& t, const std::string& key, std::int64_t now_ms) {
    auto it = t.find(key);
    if (it == t.end() || it->second.locked_until <= now_ms)
        return 0;
    return it->second.locked_until - now_ms;
}

int login_throttle::record(table& t, const std::string& key, int limit, std::int64_t now_ms) {
    prune(t, now_ms);
    auto& e = t[key];
    while (!e.failures.empty() && e.failures.front() <= now_ms - settings_.window_ms)
        e.failures.pop_front();
    e.failures.push_back(now_ms);
    int n = static_cast<int>(e.failures.size());
    if (n >= limit) {
        std::int64_t delay = settings_.first_delay_ms;
        for (int i = limit; i < n && delay < settings_.window_ms; ++i)
            delay *= 2;
        e.locked_until = std::max(e.locked_until, now_ms + std::min(delay, settings_.window_ms));
    }
    return n;
}

std::int64_t login_throttle::wait_ms(std::string_view user, std::string_view address,
                                     std::string_view browser, std::int64_t now_ms) {
    std::lock_guard lock(mutex_);
    auto own = browser.empty() ? wait_of(users_, std::string(user), now_ms)
                               : wait_of(browsers_, std::string(browser), now_ms);
    return std::max(own, wait_of(addresses_, attempt_limiter::key_of(address), now_ms));
}

int login_throttle::failed(std::string_view user, std::string_view address,
                           std::string_view browser, std::int64_t now_ms) {
    std::lock_guard lock(mutex_);
    // An IPv6 client by its /64, which one subscriber usually holds (as for enrolments).
    record(addresses_, attempt_limiter::key_of(address), settings_.per_address, now_ms);
    return browser.empty() ? record(users_, std::string(user), settings_.per_user, now_ms)
                           : record(browsers_, std::string(browser), settings_.per_user, now_ms);
}

void login_throttle::succeeded(std::string_view user, std::string_view browser) {
    std::lock_guard lock(mutex_);
    if (browser.empty())
        users_.erase(std::string(user));
    else
        browsers_.erase(std::string(browser));
}

} // namespace fieldsync::server::web
