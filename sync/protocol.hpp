// The sync protocol's messages as values, and their JSON form (docs/protocol.md). Decoding is
// strict: anything malformed is an errc::invalid_argument with a sentence saying what, before
// any of it reaches the engine.
#pragma once

#include "schema/errc.hpp"
#include "sync/merge.hpp"
#include "sync/uuid.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace fieldsync {

// Where a user may read and write: the whole district, one township, or some of its villages.
struct scope {
    std::string township;              // empty: the whole district
    std::vector<std::string> villages; // empty: every village of the township

    bool whole_district() const noexcept { return township.empty(); }
    bool contains(std::string_view township_code, std::string_view village_code) const;
    // Stable digest of the scope, carried in pull cursors to detect scope changes.
    std::string fingerprint() const;
};

// The authenticated caller, as established by the server's auth layer.
struct principal {
    std::string user;
    std::string device;
    scope where;
};

struct mutation {
    std::uint64_t seq = 0; // the device's mutation number, 1, 2, 3, …
    std::string collection;
    uuid id;
    std::vector<std::pair<std::string, field_write>> fields;
    // Set when the mutation was readable enough to be numbered but not to be applied (a bad id,
    // clock or field entry): the engine rejects it with this code and quarantines `raw`.
    std::string malformed_code;
    std::string malformed_field;
    boost::json::value raw; // the mutation as received, kept only when malformed
};

struct push_request {
    int schema_version = 0;
    std::vector<mutation> mutations;
};

enum class ack_status {
    applied,  // accepted (possibly with conflicts or restamped clocks)
    rejected, // failed validation; quarantined; the device's sequence advanced
    gap,      // not applied: an earlier number is missing; resend from expected
};

struct conflict_note {
    std::string field;
    bool won = false; // true: this write is the stored value; false: kept as the losing value
};

struct mutation_ack {
    std::uint64_t seq = 0;
    ack_status status = ack_status::applied;
    std::string code;       // rejections and gaps
    std::string field;      // rejections: the field concerned
    std::string message;    // Chinese, for the worker
    std::string message_en; //
    std::vector<conflict_note> conflicts;
    std::vector<std::pair<std::string, hlc>> restamped; // field -> the clock the server stored
    // Fields whose stored value stayed because another device's concurrent write is newer (or
    // equal): the tablet must not take its own write as confirmed; the next pull brings the
    // stored value.
    std::vector<std::string> kept;
};

struct push_result {
    std::vector<mutation_ack> acks; // one per mutation, in request order, up to the first gap
    std::uint64_t last_applied = 0; // the device's last applied mutation number after the push
    hlc server_clock;
    // Counters for metrics.
    std::uint32_t applied = 0, rejected = 0, duplicates = 0, conflicts_opened = 0;
};

struct pull_request {
    std::string cursor;        // opaque; empty for the first pull
    std::uint32_t limit = 500; // records per page (the server caps it)
    // The client reads clocks in the shared form (see share_clocks); a client that does not say
    // so (an older app) gets one clock per field.
    bool shared_clocks = false;
};

struct record_state {
    std::string collection;
    uuid id;
    boost::json::object fields; // including "_deleted" when set
    boost::json::object clocks; // field -> clock text
    std::uint64_t seq = 0;
    // The record left the caller's villages (it moved to another village of the township): the
    // tablet drops its copy. Only collection and id are sent.
    bool gone = false;
};

struct pull_result {
    std::vector<record_state> changes;
    // engine::pull with raw_json writes the changes straight into their JSON text instead
    // (comma-separated elements of the "changes" array, see append_change); `changes` is then
    // empty and `raw_count` says how many there are. Only serialize() writes these (before the
    // elements of `changes`); encode() ignores them.
    std::string changes_json;
    std::size_t raw_count = 0;
    std::string cursor;
    bool complete = false;
    bool reset = false; // the client must drop its replica (not its outbox) and pull from scratch
    std::string reset_reason;
    hlc server_clock;
};

// A record's clocks in the shared form: {"*": C, field: clock, ...} gives every field of the record
// without an entry of its own the clock C. A record's fields mostly share one clock (all of a new
// record's do), and its clocks then take one entry instead of one per field: stored and pulled
// that way they were 60 % of a record's text. The form without "*" is still valid.
inline constexpr std::string_view shared_clock_key = "*";
// The shared form's text of per-field `clocks` (the most common clock under "*", first).
std::string share_clocks(const boost::json::object& clocks);
// The same from (field, clock text) pairs, as the writer has them.
std::string share_clocks(std::span<const std::pair<std::string_view, std::string_view>> clocks);
// Appends `text` as a JSON string, and `v` as JSON text (no intermediate string).
void append_json_string(std::string& out, std::string_view text);
void append_json(std::string& out, const boost::json::value& v);
// Back to one clock per field of `fields`, in place (no-op without "*").
void expand_clocks(boost::json::object& clocks, const boost::json::object& fields);
// The same on JSON texts, for a client that did not ask for the shared form. Throws on bad JSON.
std::string expanded_clocks_text(std::string_view fields_json, std::string_view clocks_json);

// Appends one element of a pull answer's "changes" array: collection, id and, unless the record is
// gone from the caller's villages, its fields and clocks as the given JSON object texts.
void append_change(std::string& out, std::string_view collection, const uuid& id, bool gone,
                   std::string_view fields_json, std::string_view clocks_json);

// JSON codecs. Decoders report what is wrong in `why` (for the error message).
result<push_request> decode_push(const boost::json::value& v, std::string* why = nullptr);
// The same, moving the field values out of `v` instead of copying them (a push is ≈ 100 KB of
// JSON); `v` is left with nulls where they were.
result<push_request> decode_push(boost::json::value&& v, std::string* why = nullptr);
result<pull_request> decode_pull(const boost::json::value& v, std::string* why = nullptr);
result<push_result> decode_push_result(const boost::json::value& v, std::string* why = nullptr);
result<pull_result> decode_pull_result(const boost::json::value& v, std::string* why = nullptr);
result<mutation_ack> decode_ack(const boost::json::value& v, std::string* why = nullptr);
boost::json::value encode(const push_request& r);
boost::json::value encode(const pull_request& r);
boost::json::value encode(const push_result& r);
boost::json::value encode(const pull_result& r);
// The JSON text of encode(r), written directly, with `changes_json` copied verbatim. What the
// server sends for a pull.
std::string serialize(const pull_result& r);
boost::json::value encode(const mutation_ack& a);
boost::json::value encode(const mutation& m);

std::string_view to_string(ack_status s) noexcept;

} // namespace fieldsync
