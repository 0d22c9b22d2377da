// The server side of the sync protocol over one SQLite database: validate → merge (field clocks)
// → conflicts → change log → pull cursors. Knows nothing of HTTP.
//
// Thread-safety: push() and the other write methods are called by the single writer thread,
// inside a transaction it owns (see writer.hpp); pull() and the read methods may be called from
// any number of reader threads, each with its own connection. The engine's own state after
// construction is immutable except the shared clock, which is synchronized.
#pragma once

#include "schema/catalog.hpp"
#include "schema/rules.hpp"
#include "sync/hlc.hpp"
#include "sync/protocol.hpp"
#include "sync/sqlite.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace fieldsync {

struct engine_config {
    // A clock further ahead of the server's wall clock than this is restamped (and the ack says
    // so): a tablet whose clock runs ahead cannot win every future edit.
    std::int64_t max_clock_ahead_ms = 5 * 60 * 1000;
    // Tombstones older than this may be purged; a cursor from before the purge gets a reset.
    std::int64_t tombstone_retention_ms = std::int64_t{180} * 24 * 3600 * 1000;
    std::uint32_t max_pull_page = 5000;
};

// Applies the numbered migrations in schema/migrations/ that the database lacks, each in its own
// transaction, tracked in PRAGMA user_version. Also initializes the meta rows (database epoch,
// cursor secret). Refuses a database newer than this build (errc::unsupported).
result<void> migrate_server_database(sql::connection& c);

// The same for a tablet replica, from schema/client_migrations/.
result<void> migrate_client_database(sql::connection& c);

// One record changed by one accepted mutation (a tablet's or a server-side write). Observers get
// it inside the writer's transaction, so what they write commits or rolls back with it.
struct record_change {
    const collection_decl& collection;
    const uuid& id;
    std::int64_t rid;  // the record's row id
    std::uint64_t seq; // the change sequence number of this change
    std::string_view township;
    std::string_view village;
    const boost::json::object* before; // null for a new record
    const boost::json::object& after;  // including "_deleted" when set
    const principal& who;
    std::int64_t now_ms;
};

// Derived state kept in step with the records (rollups, search indexes).
// Thread-safety: called on the writer thread only.
class db_references; // validation's view of the database during a push (engine.cpp)

class change_observer {
public:
    virtual ~change_observer() = default;
    virtual void on_change(sql::connection& c, const record_change& change) = 0;
    // `delta` open conflicts for a record of `collection` in `township` (+1 opened, -1 resolved).
    virtual void on_conflicts(sql::connection& c, std::string_view township,
                              std::string_view collection, int delta) {
        (void)c;
        (void)township;
        (void)collection;
        (void)delta;
    }
    // The end of one push, write or conflict resolution, still inside its transaction: an
    // observer that buffered work writes it now. Called only when the whole batch succeeded.
    virtual void on_batch_end(sql::connection& c) { (void)c; }
    // The batch failed (a storage error is on its way to the caller, who rolls back): drop
    // anything buffered.
    virtual void on_batch_abort() noexcept {}
};

class engine {
public:
    // `c` is used once to read the database epoch, cursor secret and clock high-water mark.
    engine(const catalog& cat, engine_config cfg, sql::connection& c,
           wall_clock wall = system_wall_ms);

    // What can be worked out for a mutation with no database, before the writer takes it: the
    // checks of its fields (type, limits, format, the clock's device, reserved names) and, for
    // when its record turns out to be new, that record (its fields, the texts it would be
    // stored with, and whether it passes validate_record but for the reference checks). The
    // writer uses them only if the record is new and every field is taken with its own clock
    // (nothing restamped); otherwise it works them out itself as always. Checks that pass now
    // pass later ("not in the future"), so the writer ignores a preparation from a time later
    // than its own (the wall clock was set back in between).
    struct prepared_mutation {
        prepared_mutation() = default;
        // `record` allocated from `sp`.
        prepared_mutation(std::int64_t at, boost::json::storage_ptr sp)
            : prepared_ms(at), record(std::move(sp)) {}
        std::int64_t prepared_ms = 0; // the time the checks were made at
        std::optional<rejection> field_rejection;
        bool texts = false; // the three texts and `record` are set
        std::string fields_text, clocks_text, changes_text;
        boost::json::object record; // the fields as the new record holds them
        bool record_valid = false;  // validate_record without the reference checks passed
    };
    using prepared_push = std::vector<prepared_mutation>; // one per mutation of the push
    // submit_push prepares on the caller's thread, so that the writer, which every push waits
    // for, does not. Thread-safe.
    prepared_push prepare(const principal& who, const push_request& req) const;

    // Applies one push inside the caller's open write transaction. A mutation that changes a
    // field of a record whose review state is not "received" (sent back or approved by the
    // township head) sets it back to "received" in the same change. Storage errors throw
    // sql::error; the caller rolls back and nothing of the push remains. `prepared`: the push's
    // prepare(), done before (null: everything done here).
    push_result push(sql::connection& c, const principal& who, const push_request& req,
                     const prepared_push* prepared = nullptr);

    // A change made on the server by an office user: a review state, a conflict resolution, a
    // repaired record. Validated and merged like a tablet's mutation, stamped with the server's
    // clock under the pseudo-device "srv-<user>" and based on the stored clocks (a clean update),
    // recorded in history, and pulled by tablets like any change. No device sequence; a
    // validation failure is returned (as the ack) instead of quarantined. Inside the writer's
    // transaction.
    mutation_ack write(sql::connection& c, const principal& who, std::string_view collection,
                       const uuid& id, const boost::json::object& fields);

    // Marks a conflict resolved (after the resolving change was written with write()).
    // errc::not_found if there is no open conflict with that id in the caller's scope.
    result<void> close_conflict(sql::connection& c, const principal& who, std::int64_t conflict_id,
                                std::string_view resolution);

    // Registers an observer; call before the writer starts. The engine does not own it.
    void add_observer(change_observer* o) { observers_.push_back(o); }
    // Pulls serve a snapshot only once everything in it is on the disk: `wait(last_seq)` (the
    // writer's wait_durable) blocks until it is, and a pull whose snapshot never will be (a WAL
    // fsync failed) fails with errc::storage_failure. Without it a tablet could be handed a
    // commit a power cut then takes back, and a cursor past the positions the server numbers
    // anew after the restart. Call before serving.
    void serve_durable_only(std::function<bool(std::uint64_t)> wait) { durable_ = std::move(wait); }

    // One page of changes after the request's cursor within the caller's scope, from one read
    // snapshot. errc::bad_cursor for a cursor this database did not issue. With `raw_json` the
    // changes are written as JSON text straight from the stored rows (pull_result::changes_json,
    // for serialize(pull_result)) instead of parsed into record_state objects.
    result<pull_result> pull(sql::connection& c, const principal& who, const pull_request& req,
                             bool raw_json = false);

    // Deletes tombstones whose last change is older than the retention (but the record with the
    // highest row id, so that no row id is used twice) and raises the horizon below which
    // cursors are reset. Inside the caller's write transaction. Returns the count.
    std::size_t purge_tombstones(sql::connection& c, std::int64_t now_ms);

    // Reference data for validation: a division of the district.
    static void put_division(sql::connection& c, std::string_view code, std::string_view name);

    // SHA-256 (hex) over every live record in the scope: collection, id, fields and clocks in a
    // canonical form. Equal on a replica and the server once they have converged.
    std::string content_hash(sql::connection& c, const scope& where);

    // The highest change sequence committed (for tests and metrics).
    static std::uint64_t last_seq(sql::connection& c);

    synchronized_clock& clock() noexcept { return clock_; }
    const catalog& schema() const noexcept { return cat_; }
    const engine_config& config() const noexcept { return cfg_; }

    // A key for `purpose` derived from this database's secret (HMAC-SHA-256, hex): the server's
    // other MACs use it instead of a secret of their own, and never the cursor key itself.
    std::string derived_key(std::string_view purpose) const;

    // Cursor codec (exposed for tests and fuzzing).
    std::string encode_cursor(std::uint64_t seq, const scope& where) const;
    struct cursor_fields {
        std::string epoch;
        std::uint64_t seq = 0;
        std::string scope_fingerprint;
    };
    result<cursor_fields> decode_cursor(std::string_view text) const;

private:
    mutation_ack apply_mutation(sql::connection& c, const principal& who, const mutation& m,
                                db_references& refs, std::uint64_t& last_seq, std::int64_t now_ms,
                                push_result& out, bool quarantine = true,
                                const prepared_mutation* prepared = nullptr);
    std::optional<rejection> field_rejection(const collection_decl& coll, const principal& who,
                                             const mutation& m, std::int64_t now_ms,
                                             bool quarantine) const;
    mutation_ack reject(sql::connection& c, const principal& who, const mutation& m,
                        const rejection& r, std::int64_t now_ms);
    // The pseudo-device "srv-<user>" of changes the server makes for `user`, registered.
    static std::string server_device(sql::connection& c, std::string_view user);

    const catalog& cat_;
    engine_config cfg_;
    synchronized_clock clock_;
    std::string epoch_;  // random id of this database: cursors from another database reset
    std::string secret_; // key of the cursor MAC
    std::vector<change_observer*> observers_;
    std::function<bool(std::uint64_t)> durable_;
};

class writer;
// Queues a push on the writer; `done` runs on the writer thread after the group commit, with the
// result only if it is durable.
void submit_push(writer& w, engine& e, principal who, push_request req,
                 std::function<void(result<push_result>)> done);

// Canonical JSON text: object keys sorted, no whitespace (for hashing).
std::string canonical_json(const boost::json::value& v);

// SHA-256 over live records fed in id order; the server and replicas use the same form so that
// converged stores give equal hashes.
class content_hasher {
public:
    content_hasher();
    ~content_hasher();
    content_hasher(const content_hasher&) = delete;
    content_hasher& operator=(const content_hasher&) = delete;
    void add(const uuid& id, std::string_view collection, const boost::json::object& fields,
             const boost::json::object& clocks);
    std::string finish(); // lowercase hex

private:
    void* ctx_; // EVP_MD_CTX
};

} // namespace fieldsync
