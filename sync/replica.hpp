// The tablet side of the protocol: a local SQLite replica of the server-confirmed records, an
// outbox of numbered local mutations, and the device's hybrid logical clock. The local view of a
// record is its confirmed state with the pending outbox writes on top, so a worker always sees
// what they entered, and a pull never hides an unsent edit.
//
// The replica produces push and pull requests and applies their results; moving them over the
// network is the caller's business (the HTTPS client, or an in-process engine in tests).
//
// Thread-safety: not thread-safe; one replica is used by one thread at a time.
#pragma once

#include "schema/catalog.hpp"
#include "sync/hlc.hpp"
#include "sync/protocol.hpp"
#include "sync/sqlite.hpp"
#include "sync/uuid.hpp"

#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <vector>

namespace fieldsync {

struct local_record {
    std::string collection;
    uuid id;
    boost::json::object fields; // the local view, without "_deleted"
    bool pending = false;       // has unacknowledged local writes
};

struct record_issue {
    uuid id;
    std::string kind; // "rejected" or "conflict"
    std::string field;
    std::string code;
    std::string message;
};

class replica {
public:
    // Opens (creating if needed) the replica at `path` (":memory:" for tests).
    replica(const std::string& path, const catalog& cat, std::string device_id,
            wall_clock wall = system_wall_ms, std::uint64_t seed = std::random_device{}());
    replica(const replica&) = delete;
    replica& operator=(const replica&) = delete;

    // Local edits. Each becomes one numbered mutation in the outbox. Field names (identifiers)
    // and text (UTF-8) are checked here, errc::invalid_argument; the record rules are the
    // server's (and an app may run validate_value/validate_record first for quick feedback).
    result<uuid> create(std::string_view collection, const boost::json::object& fields);
    result<void> update(const uuid& id, const boost::json::object& fields);
    result<void> remove(const uuid& id); // sets _deleted

    std::optional<local_record> get(const uuid& id);
    std::vector<local_record> list(std::string_view collection = {});

    // At most `max` outbox mutations, oldest first; empty when nothing is pending.
    push_request next_push(std::size_t max = 500);
    // Removes what the server acknowledged, records rejections and lost conflicts, folds applied
    // writes into the confirmed state, and resends from the server's number after a gap.
    //
    // A gap this outbox cannot fill means the server lost mutations it had acknowledged (its
    // database was restored from a backup): what is still pending is numbered on from the
    // server's last applied number, so that the tablet keeps syncing. (The lost writes are not
    // put back: docs/status.md says why.) Returns true when it renumbered.
    bool apply_push_result(const push_request& sent, const push_result& res);

    pull_request next_pull(std::uint32_t limit = 500);
    void apply_pull_result(const pull_result& res);

    // The device's records whose latest mutation was rejected or lost a concurrent edit.
    std::vector<record_issue> issues();
    std::size_t pending_count();
    // Same definition as engine::content_hash: all live records of the local view.
    std::string content_hash();
    // Forget all records and the cursor (device revoked): keeps nothing readable.
    void wipe();

    hlc_clock& clock() noexcept { return clock_; }
    // Correction added to the tablet's wall clock, learnt from the server's clock (ms).
    std::int64_t clock_offset_ms() const noexcept { return offset_ms_; }
    const std::string& device() const noexcept { return device_; }
    sql::connection& db() noexcept { return db_; }

private:
    std::uint64_t append_outbox(std::string_view collection, const uuid& id,
                                const boost::json::object& values);
    std::optional<hlc> current_clock(const uuid& id, std::string_view field);
    std::optional<std::string> collection_of(const uuid& id);
    void save_clock();
    void learn_server_clock(const hlc& server, bool restamped);
    void forget_repaired_rejections(const record_state& pulled);
    bool renumber_outbox(std::uint64_t first);

    sql::connection db_;
    const catalog& cat_;
    std::string device_;
    wall_clock device_wall_;
    std::int64_t offset_ms_ = 0;
    hlc_clock clock_; // reads device_wall_ + offset_ms_
    uuid_v7_generator ids_;
};

} // namespace fieldsync
