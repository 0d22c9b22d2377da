// Users, tablets and enrolment: the auth store behind fieldsyncd and the `fieldsync users` /
// `fieldsync tablets` commands. It owns the tables of schema/migrations/0002_auth.sql.
//
// Secrets never reach the database: passwords are PBKDF2-HMAC-SHA256 with a per-user salt,
// device tokens (256 random bits) and enrolment codes are stored as SHA-256 hashes and compared
// in constant time.
//
// Thread-safety: free functions over a caller-owned connection. Writes run on fieldsyncd's
// writer thread (inside its transaction) or in the command-line tool's own transaction; reads
// run on a reader-pool connection. Never on a network thread.
#pragma once

#include "schema/errc.hpp"
#include "sync/protocol.hpp"
#include "sync/sqlite.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fieldsync::auth {

// field_worker devices push and pull their township (or villages); township_head devices pull
// their township; district_admin devices pull the district and use the admin API.
enum class role { field_worker, township_head, district_admin };

std::string_view to_string(role r) noexcept;
std::optional<role> parse_role(std::string_view s) noexcept;

struct user {
    std::string username;
    auth::role role = role::field_worker;
    std::string township;              // empty for district_admin
    std::vector<std::string> villages; // field_worker only; empty: the whole township
    bool disabled = false;
    std::int64_t created_ms = 0;

    fieldsync::scope scope() const { return {township, villages}; }
};

struct device_info {
    std::string device;
    std::string username;
    std::string label;
    std::int64_t enrolled_ms = 0;
    std::optional<std::int64_t> revoked_ms;
    std::optional<std::int64_t> last_push_ms;
    std::uint64_t last_seq = 0;
};

// The caller behind a bearer token.
struct identity {
    principal who; // user, device and scope, as the sync engine expects them
    auth::role role = role::field_worker;
};

struct enrolment {
    std::string device; // the new device id (the tablet's clock id)
    std::string token;  // the bearer token, shown once
    user owner;
};

// Failures that the HTTP layer and the CLI report; `code` is the wire code, `message` a sentence.
struct failure {
    errc code = errc::invalid_argument;
    std::string wire_code; // e.g. "device_revoked", "user_disabled", "unknown_township"
    std::string message;
};

template <class T>
struct outcome {
    std::optional<T> value;
    failure error;
    explicit operator bool() const noexcept { return value.has_value(); }
};

// --- writes (writer thread or the CLI's own transaction) ---

// A new user. The scope is checked against the role and, when the district's divisions are
// loaded, against them. `password` may be empty (no web login yet).
// PBKDF2-HMAC-SHA256 iterations for a password (OWASP 2023 guidance for PBKDF2-SHA256 is
// 600,000; 210,000 keeps a login under ~0.1 s on the district's 2-core server).
inline constexpr unsigned password_iterations = 210000;

// `iterations` below the default only for accounts whose password is public anyway (the demo
// district's logins, printed in demo.json).
outcome<user> add_user(sql::connection& c, user u, std::string_view password, std::int64_t now_ms,
                       unsigned iterations = password_iterations);
// Changes where a user works. Their devices' next pull resets (the cursor's scope changed).
outcome<user> set_scope(sql::connection& c, std::string_view username, std::string township,
                        std::vector<std::string> villages, std::int64_t now_ms);
outcome<user> set_disabled(sql::connection& c, std::string_view username, bool disabled,
                           std::int64_t now_ms);
// Also ends every web session of the user.
outcome<bool> set_password(sql::connection& c, std::string_view username, std::string_view password,
                           std::int64_t now_ms);

struct enrolment_code {
    std::string code; // "ABCD-EFGH-JKMN": 12 characters of Crockford base32 (60 bits)
    std::int64_t expires_ms = 0;
};
outcome<enrolment_code> create_enrolment_code(sql::connection& c, std::string_view username,
                                              std::int64_t ttl_ms, std::int64_t now_ms);
// Exchanges a one-time code for a new device and its token. Unknown, used and expired codes all
// fail alike ("invalid_code") so that guessing learns nothing.
outcome<enrolment> redeem_enrolment_code(sql::connection& c, std::string_view code,
                                         std::string_view label, std::int64_t now_ms);
outcome<device_info> revoke_device(sql::connection& c, std::string_view device,
                                   std::int64_t now_ms);

// --- reads (reader pool or the CLI) ---

std::optional<user> find_user(sql::connection& c, std::string_view username);
std::vector<user> list_users(sql::connection& c);
std::vector<device_info> list_devices(sql::connection& c, std::string_view username = {});
// Resolves "Authorization: Bearer <token>". Unknown token: unauthorized; revoked device:
// device_revoked; disabled user: user_disabled.
outcome<identity> authenticate(sql::connection& c, std::string_view token);
bool verify_login(sql::connection& c, std::string_view username, std::string_view password);

// --- crypto helpers (exposed for tests) ---

std::string hash_password(std::string_view password, unsigned iterations = password_iterations);
bool verify_password(std::string_view password, std::string_view stored);
std::string sha256_hex(std::string_view data);
std::string hmac_sha256_hex(std::string_view key, std::string_view data);
std::string random_token();  // 32 random bytes, base64url, prefixed "fst_"
std::string random_secret(); // 32 random bytes, base64url (web session cookies, CSRF tokens)
// Upper-cases, drops separators and maps look-alikes (O→0, I/L→1) of a typed enrolment code.
std::string normalize_code(std::string_view code);

} // namespace fieldsync::auth
