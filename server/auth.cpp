#include "server/auth.hpp"

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <stdexcept>

namespace fieldsync::auth {

namespace json = boost::json;

namespace {

constexpr char hex_digits[] = "0123456789abcdef";
// Crockford base32: no I, L, O, U, so a code read aloud or typed from paper survives.
constexpr char code_alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

std::string hex(const unsigned char* p, std::size_t n) {
    std::string s;
    s.reserve(n * 2);
    for (std::size_t i = 0; i < n; ++i) {
        s += hex_digits[p[i] >> 4];
        s += hex_digits[p[i] & 15];
    }
    return s;
}

std::optional<std::vector<unsigned char>> unhex(std::string_view s) {
    if (s.size() % 2)
        return std::nullopt;
    std::vector<unsigned char> out(s.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i) {
        auto r = std::from_chars(s.data() + 2 * i, s.data() + 2 * i + 2, out[i], 16);
        if (r.ec != std::errc{} || r.ptr != s.data() + 2 * i + 2)
            return std::nullopt;
    }
    return out;
}

void random_bytes(unsigned char* p, std::size_t n) {
    if (RAND_bytes(p, static_cast<int>(n)) != 1)
        throw std::runtime_error("RAND_bytes failed");
}

std::string base64url(const unsigned char* p, std::size_t n) {
    static constexpr char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    std::uint32_t buf = 0;
    int bits = 0;
    for (std::size_t i = 0; i < n; ++i) {
        buf = buf << 8 | p[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out += a[(buf >> bits) & 63];
        }
    }
    if (bits > 0)
        out += a[(buf << (6 - bits)) & 63];
    return out;
}

template <class T>
outcome<T> fail(errc code, std::string wire, std::string message) {
    outcome<T> o;
    o.error = {code, std::move(wire), std::move(message)};
    return o;
}

template <class T>
outcome<T> ok(T value) {
    outcome<T> o;
    o.value = std::move(value);
    return o;
}

bool all_digits(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
}

bool divisions_loaded(sql::connection& c) {
    auto s = c.cached("SELECT 1 FROM divisions LIMIT 1");
    return s->step();
}

bool division_exists(sql::connection& c, std::string_view code) {
    auto s = c.cached("SELECT 1 FROM divisions WHERE code = ?");
    s->bind_all(code);
    return s->step();
}

// The scope must fit the role; codes must be well formed and, when the district's divisions
// are loaded, known (a typo would otherwise lock a worker out of every record).
std::optional<failure> check_scope(sql::connection& c, role r, const std::string& township,
                                   std::vector<std::string>& villages) {
    if (r == role::district_admin) {
        if (!township.empty() || !villages.empty())
            return failure{errc::invalid_argument, "invalid_scope",
                           "a district admin's scope is the whole district: give no township"};
        return std::nullopt;
    }
    if (township.size() != 9 || !all_digits(township))
        return failure{errc::invalid_argument, "invalid_scope",
                       "the township must be a 9-digit division code"};
    if (r == role::township_head && !villages.empty())
        return failure{errc::invalid_argument, "invalid_scope",
                       "a township head's scope is the whole township: give no villages"};
    std::sort(villages.begin(), villages.end());
    villages.erase(std::unique(villages.begin(), villages.end()), villages.end());
    for (const auto& v : villages)
        if (v.size() != 12 || !all_digits(v) || !v.starts_with(township))
            return failure{errc::invalid_argument, "invalid_scope",
                           "village " + v + " is not a 12-digit code of township " + township};
    if (divisions_loaded(c)) {
        if (!division_exists(c, township))
            return failure{errc::not_found, "unknown_division",
                           "township " + township + " is not a division of this district"};
        for (const auto& v : villages)
            if (!division_exists(c, v))
                return failure{errc::not_found, "unknown_division",
                               "village " + v + " is not a division of this district"};
    }
    return std::nullopt;
}

bool valid_username(std::string_view s) {
    if (s.empty() || s.size() > 64)
        return false;
    return std::all_of(s.begin(), s.end(), [](char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
               ch == '-';
    });
}

std::string villages_text(const std::vector<std::string>& villages) {
    json::array a;
    for (const auto& v : villages)
        a.emplace_back(v);
    return json::serialize(a);
}

std::vector<std::string> parse_villages(std::string_view text) {
    std::vector<std::string> out;
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (!ec && v.is_array())
        for (const auto& x : v.as_array())
            if (x.is_string())
                out.emplace_back(x.as_string());
    return out;
}

constexpr const char* user_columns =
    "SELECT username, role, township, villages, disabled, created_ms FROM users ";

user read_user(sql::statement& s) {
    user u;
    u.username = std::string(s.text(0));
    u.role = parse_role(s.text(1)).value_or(role::field_worker);
    u.township = std::string(s.text(2));
    u.villages = parse_villages(s.text(3));
    u.disabled = s.int64(4) != 0;
    u.created_ms = s.int64(5);
    return u;
}

device_info read_device(sql::statement& s) {
    device_info d;
    d.device = std::string(s.text(0));
    d.username = std::string(s.text(1));
    d.label = std::string(s.text(2));
    d.enrolled_ms = s.is_null(3) ? 0 : s.int64(3);
    if (!s.is_null(4))
        d.revoked_ms = s.int64(4);
    if (!s.is_null(5))
        d.last_push_ms = s.int64(5);
    d.last_seq = static_cast<std::uint64_t>(s.int64(6));
    return d;
}

constexpr const char* device_columns = "SELECT device, user, label, enrolled_ms, revoked_ms, "
                                       "last_push_ms, last_seq FROM devices ";

} // namespace

std::string_view to_string(role r) noexcept {
    switch (r) {
    case role::field_worker:
        return "field_worker";
    case role::township_head:
        return "township_head";
    case role::district_admin:
        return "district_admin";
    }
    return "unknown";
}

std::optional<role> parse_role(std::string_view s) noexcept {
    if (s == "field_worker")
        return role::field_worker;
    if (s == "township_head")
        return role::township_head;
    if (s == "district_admin")
        return role::district_admin;
    return std::nullopt;
}

std::string sha256_hex(std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("SHA-256 failed");
    return hex(md, len);
}

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
              reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len))
        throw std::runtime_error("HMAC-SHA-256 failed");
    return hex(md, len);
}

std::string random_token() {
    return "fst_" + random_secret();
}

std::string random_secret() {
    unsigned char b[32];
    random_bytes(b, sizeof b);
    return base64url(b, sizeof b);
}

std::string hash_password(std::string_view password, unsigned iterations) {
    unsigned char salt[16];
    random_bytes(salt, sizeof salt);
    unsigned char out[32];
    if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt, sizeof salt,
                          static_cast<int>(iterations), EVP_sha256(), sizeof out, out) != 1)
        throw std::runtime_error("PBKDF2 failed");
    return "pbkdf2-sha256$" + std::to_string(iterations) + "$" + hex(salt, sizeof salt) + "$" +
           hex(out, sizeof out);
}

bool verify_password(std::string_view password, std::string_view stored) {
    // pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>
    std::vector<std::string_view> parts;
    for (std::size_t pos; (pos = stored.find('$')) != std::string_view::npos;) {
        parts.push_back(stored.substr(0, pos));
        stored = stored.substr(pos + 1);
    }
    parts.push_back(stored);
    if (parts.size() != 4 || parts[0] != "pbkdf2-sha256")
        return false;
    unsigned iterations = 0;
    auto r = std::from_chars(parts[1].data(), parts[1].data() + parts[1].size(), iterations);
    auto salt = unhex(parts[2]);
    auto expected = unhex(parts[3]);
    if (r.ec != std::errc{} || iterations == 0 || iterations > 10000000 || !salt || !expected ||
        expected->empty() || expected->size() > 64)
        return false;
    std::vector<unsigned char> got(expected->size());
    if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt->data(),
                          static_cast<int>(salt->size()), static_cast<int>(iterations),
                          EVP_sha256(), static_cast<int>(got.size()), got.data()) != 1)
        return false;
    return CRYPTO_memcmp(got.data(), expected->data(), got.size()) == 0;
}

std::string normalize_code(std::string_view code) {
    std::string out;
    for (char ch : code) {
        if (ch == '-' || ch == ' ')
            continue;
        if (ch >= 'a' && ch <= 'z')
            ch = static_cast<char>(ch - 'a' + 'A');
        if (ch == 'O')
            ch = '0';
        else if (ch == 'I' || ch == 'L')
            ch = '1';
        out += ch;
        if (out.size() > 64)
            break;
    }
    return out;
}

outcome<user> add_user(sql::connection& c, user u, std::string_view password, std::int64_t now_ms,
                       unsigned iterations) {
    if (!valid_username(u.username))
        return fail<user>(errc::invalid_argument, "invalid_username",
                          "a username is 1-64 characters of a-z, 0-9, '.', '_' and '-'");
    if (auto f = check_scope(c, u.role, u.township, u.villages))
        return fail<user>(f->code, f->wire_code, f->message);
    if (find_user(c, u.username))
        return fail<user>(errc::conflict, "user_exists", "user " + u.username + " already exists");
    auto s = c.cached("INSERT INTO users(username, role, township, villages, password_hash, "
                      "disabled, created_ms, updated_ms) VALUES(?, ?, ?, ?, ?, 0, ?, ?)");
    std::optional<std::string> hash;
    if (!password.empty())
        hash = hash_password(password, iterations);
    s->bind_all(u.username, to_string(u.role), u.township, villages_text(u.villages), hash, now_ms,
                now_ms);
    s->run();
    u.created_ms = now_ms;
    u.disabled = false;
    return ok(std::move(u));
}

outcome<user> set_scope(sql::connection& c, std::string_view username, std::string township,
                        std::vector<std::string> villages, std::int64_t now_ms) {
    auto u = find_user(c, username);
    if (!u)
        return fail<user>(errc::not_found, "not_found", "no user " + std::string(username));
    if (auto f = check_scope(c, u->role, township, villages))
        return fail<user>(f->code, f->wire_code, f->message);
    auto s = c.cached("UPDATE users SET township = ?, villages = ?, updated_ms = ? "
                      "WHERE username = ?");
    s->bind_all(township, villages_text(villages), now_ms, username);
    s->run();
    u->township = std::move(township);
    u->villages = std::move(villages);
    return ok(std::move(*u));
}

outcome<user> set_disabled(sql::connection& c, std::string_view username, bool disabled,
                           std::int64_t now_ms) {
    auto u = find_user(c, username);
    if (!u)
        return fail<user>(errc::not_found, "not_found", "no user " + std::string(username));
    auto s = c.cached("UPDATE users SET disabled = ?, updated_ms = ? WHERE username = ?");
    s->bind_all(disabled ? 1 : 0, now_ms, username);
    s->run();
    u->disabled = disabled;
    return ok(std::move(*u));
}

outcome<bool> set_password(sql::connection& c, std::string_view username, std::string_view password,
                           std::int64_t now_ms) {
    if (!find_user(c, username))
        return fail<bool>(errc::not_found, "not_found", "no user " + std::string(username));
    if (password.size() < 8)
        return fail<bool>(errc::invalid_argument, "weak_password",
                          "a password needs at least 8 characters");
    {
        auto s = c.cached("UPDATE users SET password_hash = ?, updated_ms = ? WHERE username = ?");
        s->bind_all(hash_password(password), now_ms, username);
        s->run();
    }
    // A new password is often a reaction to a leaked one: every web session of the user ends.
    auto s = c.cached("DELETE FROM web_sessions WHERE username = ?");
    s->bind_all(username);
    s->run();
    return ok(true);
}

outcome<enrolment_code> create_enrolment_code(sql::connection& c, std::string_view username,
                                              std::int64_t ttl_ms, std::int64_t now_ms) {
    auto u = find_user(c, username);
    if (!u)
        return fail<enrolment_code>(errc::not_found, "not_found",
                                    "no user " + std::string(username));
    if (u->disabled)
        return fail<enrolment_code>(errc::forbidden, "user_disabled",
                                    "user " + std::string(username) + " is disabled");
    if (ttl_ms <= 0 || ttl_ms > std::int64_t{7} * 24 * 3600 * 1000)
        return fail<enrolment_code>(errc::invalid_argument, "invalid_argument",
                                    "an enrolment code lives between 1 minute and 7 days");
    unsigned char b[12];
    random_bytes(b, sizeof b);
    std::string raw;
    for (unsigned char x : b)
        raw += code_alphabet[x & 31]; // 32 symbols: the low 5 bits are uniform
    enrolment_code out;
    out.code = raw.substr(0, 4) + "-" + raw.substr(4, 4) + "-" + raw.substr(8, 4);
    out.expires_ms = now_ms + ttl_ms;
    auto s = c.cached("INSERT INTO enrolment_codes(code_hash, username, created_ms, expires_ms) "
                      "VALUES(?, ?, ?, ?)");
    s->bind_all(sha256_hex(raw), username, now_ms, out.expires_ms);
    s->run();
    return ok(std::move(out));
}

outcome<enrolment> redeem_enrolment_code(sql::connection& c, std::string_view code,
                                         std::string_view label, std::int64_t now_ms) {
    auto invalid = [] {
        return fail<enrolment>(errc::unauthorized, "invalid_code",
                               "the enrolment code is unknown, used or expired; ask for a new one");
    };
    std::string normalized = normalize_code(code);
    if (normalized.size() != 12)
        return invalid();
    std::string hash = sha256_hex(normalized);
    std::string username;
    {
        auto s = c.cached("SELECT code_hash, username, expires_ms, used_ms FROM enrolment_codes "
                          "WHERE code_hash = ?");
        s->bind_all(hash);
        if (!s->step())
            return invalid();
        auto stored = s->text(0);
        if (stored.size() != hash.size() ||
            CRYPTO_memcmp(stored.data(), hash.data(), hash.size()) != 0)
            return invalid();
        if (!s->is_null(3) || s->int64(2) <= now_ms)
            return invalid();
        username = std::string(s->text(1));
    }
    auto u = find_user(c, username);
    if (!u || u->disabled)
        return invalid();
    unsigned char b[8];
    random_bytes(b, sizeof b);
    enrolment e;
    e.device = "t-" + hex(b, sizeof b);
    e.token = random_token();
    e.owner = std::move(*u);
    {
        auto s = c.cached("INSERT INTO devices(device, user, last_seq, token_hash, label, "
                          "enrolled_ms) VALUES(?, ?, 0, ?, ?, ?)");
        s->bind_all(e.device, e.owner.username, sha256_hex(e.token), label.substr(0, 100), now_ms);
        s->run();
    }
    auto s = c.cached("UPDATE enrolment_codes SET used_ms = ?, device = ? WHERE code_hash = ?");
    s->bind_all(now_ms, e.device, hash);
    s->run();
    return ok(std::move(e));
}

outcome<device_info> revoke_device(sql::connection& c, std::string_view device,
                                   std::int64_t now_ms) {
    {
        auto s = c.cached("UPDATE devices SET revoked_ms = coalesce(revoked_ms, ?) "
                          "WHERE device = ?");
        s->bind_all(now_ms, device);
        s->run();
    }
    auto s = c.cached(std::string(device_columns) + "WHERE device = ?");
    s->bind_all(device);
    if (!s->step())
        return fail<device_info>(errc::not_found, "not_found", "no tablet " + std::string(device));
    return ok(read_device(*s));
}

std::optional<user> find_user(sql::connection& c, std::string_view username) {
    auto s = c.cached(std::string(user_columns) + "WHERE username = ?");
    s->bind_all(username);
    if (!s->step())
        return std::nullopt;
    return read_user(*s);
}

std::vector<user> list_users(sql::connection& c) {
    std::vector<user> out;
    auto s = c.cached(std::string(user_columns) + "ORDER BY username");
    while (s->step())
        out.push_back(read_user(*s));
    return out;
}

std::vector<device_info> list_devices(sql::connection& c, std::string_view username) {
    std::vector<device_info> out;
    auto s = c.cached(std::string(device_columns) +
                      "WHERE token_hash IS NOT NULL AND (? = '' OR user = ?) "
                      "ORDER BY user, enrolled_ms");
    // As a std::string: an empty string_view{} has a null data() and would bind SQL NULL, and
    // `? = ''` would then match nothing.
    std::string name(username);
    s->bind_all(name, name);
    while (s->step())
        out.push_back(read_device(*s));
    return out;
}

outcome<identity> authenticate(sql::connection& c, std::string_view token) {
    auto unknown = [] {
        return fail<identity>(errc::unauthorized, "unauthorized",
                              "a valid device token is required (Authorization: Bearer)");
    };
    if (token.size() < 8 || token.size() > 200)
        return unknown();
    std::string hash = sha256_hex(token);
    auto s = c.cached("SELECT d.device, d.token_hash, d.revoked_ms, u.username, u.role, "
                      "u.township, u.villages, u.disabled FROM devices d "
                      "JOIN users u ON u.username = d.user WHERE d.token_hash = ?");
    s->bind_all(hash);
    if (!s->step())
        return unknown();
    // The index found the row by hash; the comparison itself is constant-time all the same.
    auto stored = s->text(1);
    if (stored.size() != hash.size() || CRYPTO_memcmp(stored.data(), hash.data(), hash.size()))
        return unknown();
    if (!s->is_null(2))
        return fail<identity>(errc::device_revoked, "device_revoked",
                              "this tablet was revoked: delete its local data and enrol again");
    if (s->int64(7) != 0)
        return fail<identity>(errc::unauthorized, "user_disabled",
                              "this user is disabled; contact the district office");
    identity id;
    id.who.device = std::string(s->text(0));
    id.who.user = std::string(s->text(3));
    id.role = parse_role(s->text(4)).value_or(role::field_worker);
    id.who.where.township = std::string(s->text(5));
    id.who.where.villages = parse_villages(s->text(6));
    return ok(std::move(id));
}

bool verify_login(sql::connection& c, std::string_view username, std::string_view password) {
    auto s = c.cached("SELECT password_hash, disabled FROM users WHERE username = ?");
    s->bind_all(username);
    if (!s->step() || s->is_null(0) || s->int64(1) != 0) {
        // Spend the same time as a real check so that timing does not reveal usernames.
        (void)verify_password(password, "pbkdf2-sha256$210000$00$00");
        return false;
    }
    return verify_password(password, s->text(0));
}

} // namespace fieldsync::auth
