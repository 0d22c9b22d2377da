// Review of a township's data by its head (and of the whole district by an admin): listing and
// search, record history, conflicts and their resolution, the quarantine, review states that
// sync back to the worker's tablet, and personal data masked unless explicitly revealed (every
// reveal is logged).
//
// Every function takes the caller's principal and answers only within its scope; a record outside
// it is reported as not found, indistinguishable from one that does not exist.
//
// Thread-safety: the read functions may run on any reader connection; the write functions
// (resolve, set_review_state, quarantine handling, reveal — which logs) run on the writer thread
// inside its transaction.
#pragma once

#include "schema/catalog.hpp"
#include "sync/engine.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fieldsync {

enum class review_state { received, has_issues, approved };
std::string_view to_string(review_state s) noexcept;
std::optional<review_state> parse_review_state(std::string_view s) noexcept;

struct record_query {
    std::string collection; // empty: all
    std::string village;    // empty: all in scope
    std::string worker;     // username of the creator; empty: all
    std::string review;     // "received", "has_issues", "approved"; empty: all
    std::string text;       // substring of any field value; empty: no filter
    std::string from, to;   // "YYYY-MM-DD", inclusive, on the collection's date (visited_at,
                            // checked_at, …) or, for persons and households, the sync date
    bool include_deleted = false;
    std::uint32_t limit = 50; // at most 500
    std::uint32_t offset = 0;
};

struct record_summary {
    std::string collection;
    uuid id;
    std::string township;
    std::string village;
    boost::json::object fields; // personal fields masked
    std::string review;         // review state
    std::string review_comment;
    std::string created_by;
    std::string created_device;
    std::int64_t created_ms = 0;
    std::int64_t updated_ms = 0;
    bool deleted = false;
    std::int64_t open_conflicts = 0;
};

struct record_page {
    std::vector<record_summary> items;
    std::int64_t total = 0; // matching records, for paging
};

struct history_entry {
    std::uint64_t seq = 0;
    std::string user;
    std::string device;
    std::int64_t at_ms = 0;
    boost::json::object changes; // field -> [old, new], personal values masked
};

struct conflict_entry {
    std::int64_t id = 0;
    std::string collection;
    uuid record;
    std::string township, village, field;
    boost::json::value winner_value, loser_value; // masked for personal fields
    std::string winner_user, winner_device, loser_user, loser_device;
    std::int64_t winner_ms = 0, loser_ms = 0; // from the clocks: when each value was entered
    std::int64_t opened_ms = 0;
    std::string status, resolved_by, resolution;
};

struct quarantine_entry {
    std::int64_t id = 0;
    std::string device, user, collection, record_id, township, code, field, message_zh, message_en,
        status, note;
    std::uint64_t mutation_seq = 0;
    std::int64_t received_ms = 0;
    boost::json::value payload; // as received (personal values masked)
};

// "500154********1234" for ID numbers, "138****5678" for phones: what a listing shows.
std::string mask_value(std::string_view format, std::string_view value);

class review {
public:
    explicit review(const catalog& cat) : cat_(cat) {}

    result<record_page> list(sql::connection& c, const principal& who, const record_query& q) const;
    result<record_summary> get(sql::connection& c, const principal& who, const uuid& id) const;
    result<std::vector<history_entry>> history(sql::connection& c, const principal& who,
                                               const uuid& id) const;
    std::vector<conflict_entry> conflicts(sql::connection& c, const principal& who,
                                          std::string_view status = "open") const;
    std::vector<quarantine_entry> quarantine(sql::connection& c, const principal& who,
                                             std::string_view status = "open") const;

    // Writer thread. Resolve a conflict by keeping the winner ("winner"), taking the losing value
    // ("loser") or entering a value; the outcome is an ordinary change (engine::write) that syncs
    // to the tablets, and the conflict is closed.
    result<mutation_ack> resolve(sql::connection& c, engine& e, const principal& who,
                                 std::int64_t conflict_id, std::string_view choice,
                                 const boost::json::value* entered) const;
    // Writer thread. A review state with a comment ("has issues" needs one); syncs to tablets.
    result<mutation_ack> set_review_state(sql::connection& c, engine& e, const principal& who,
                                          const uuid& id, review_state state,
                                          std::string_view comment) const;
    // Writer thread. Dismiss a quarantined mutation with a reason.
    result<void> dismiss(sql::connection& c, const principal& who, std::int64_t quarantine_id,
                         std::string_view reason) const;
    // Writer thread. Apply a quarantined mutation again with `repaired` over the values it was
    // sent with (validated like any change; fields starting with "_" other than `_deleted`:
    // invalid_argument); on success the entry is marked resubmitted.
    result<mutation_ack> resubmit(sql::connection& c, engine& e, const principal& who,
                                  std::int64_t quarantine_id,
                                  const boost::json::object& repaired) const;
    // Writer thread. The unmasked value of a personal field; the reveal is logged.
    result<std::string> reveal(sql::connection& c, const principal& who, const uuid& id,
                               std::string_view field, std::int64_t now_ms) const;
    // Any thread. The access log, newest first (district admins).
    static std::vector<boost::json::object> access_log(sql::connection& c, std::uint32_t limit);
    // Writer thread. Logs an action on personal data (e.g. an unmasked export).
    static void log_access(sql::connection& c, std::string_view user, std::string_view action,
                           std::string_view record_id, std::string_view field,
                           std::string_view detail, std::int64_t now_ms);

    // Masks the personal fields of a record of `collection` in place.
    void mask(std::string_view collection, boost::json::object& fields) const;

private:
    const catalog& cat_;
};

} // namespace fieldsync
