// Shared fixtures for sync tests: a test catalog, temporary folders, and an in-process server
// (engine over SQLite) that replicas sync with directly, without HTTP.
#pragma once

#include "schema/catalog.hpp"
#include "sync/engine.hpp"
#include "sync/replica.hpp"

#include <filesystem>
#include <optional>
#include <ostream>
#include <string>

namespace fieldsync::testing {

// Division codes used by the tests: district 500101, two townships with two villages each.
inline constexpr const char* town_a = "500101001";
inline constexpr const char* town_b = "500101002";
inline constexpr const char* village_a1 = "500101001001";
inline constexpr const char* village_a2 = "500101001002";
inline constexpr const char* village_b1 = "500101002001";

const catalog& test_catalog(); // tests/data/test_collections.json

class temp_dir {
public:
    temp_dir();
    ~temp_dir();
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    const std::filesystem::path& path() const { return path_; }
    std::string file(std::string_view name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

principal worker(std::string device, std::string township = town_a,
                 std::vector<std::string> villages = {});

// A migrated server database with the test divisions, and an engine over it.
class server_harness {
public:
    explicit server_harness(const std::string& path = ":memory:", engine_config cfg = {},
                            wall_clock wall = system_wall_ms);
    push_result push(const principal& who, const push_request& req);
    pull_result pull(const principal& who, const pull_request& req);
    // Pushes the replica's whole outbox and pulls until complete.
    void sync(replica& r, const principal& who, std::size_t batch = 50);
    std::string hash(const scope& where = {}) { return eng.content_hash(db, where); }
    std::int64_t count(std::string_view sql_text);

    sql::connection db;
    engine eng;
};

// A record's fields for the test collection.
boost::json::object item(std::string name, const char* township = town_a,
                         const char* village = village_a1);

} // namespace fieldsync::testing

namespace fieldsync::testing {

// What the server stores for one record (including deleted ones): fields and per-field clocks.
// Empty objects when the record does not exist.
boost::json::object stored_fields(server_harness& s, const uuid& id);
boost::json::object stored_clocks(server_harness& s, const uuid& id);
std::optional<hlc> stored_clock(server_harness& s, const uuid& id, std::string_view field);

// base64url without padding, written apart from the engine's codec so that tests forge and take
// apart cursors independently of it. from_base64url expects valid base64url text.
inline constexpr char base64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
std::string to_base64url(std::string_view bytes);
std::string from_base64url(std::string_view text);

// A wall clock a test moves by hand (Unix milliseconds).
struct manual_clock {
    std::int64_t ms = 1764316800000; // 2025-11-28T08:00:00Z
    wall_clock fn() {
        return [this] { return ms; };
    }
};

} // namespace fieldsync::testing

namespace fieldsync {
// Readable values in GoogleTest failure messages.
inline void PrintTo(const hlc& h, std::ostream* os) {
    *os << h.to_string();
}
inline void PrintTo(const uuid& u, std::ostream* os) {
    *os << u.to_string();
}
} // namespace fieldsync
