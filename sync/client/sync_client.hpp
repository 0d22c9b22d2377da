// The tablet's sync client: a fieldsync::replica (local SQLite, numbered outbox, HLC) with an
// HTTPS transport to fieldsyncd (docs/protocol.md). It enrols a tablet, then syncs: push the
// outbox oldest first, then pull until complete, retrying what the network lost with
// exponential backoff and jitter. Every server answer is handled: acks (kept, restamped,
// conflicts, rejections), gaps (the replica resends), resets (records dropped, outbox kept),
// bad cursors (full re-download) and revocation (local personal data wiped).
//
// State lives in one folder: `replica.db` (records, outbox, cursor, clock) and `enrolment.json`
// (server URL, device id, token, optional certificate pin; mode 0600).
//
// Thread-safety: not thread-safe. One sync_client is used by one thread at a time (an app runs
// its syncs on one background thread and reads statuses there, or guards the client with a
// mutex). Distinct clients (distinct state folders) are independent.
#pragma once

#include "schema/catalog.hpp"
#include "schema/errc.hpp"
#include "sync/hlc.hpp"
#include "sync/replica.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace fieldsync::client {

// Exponential backoff with full jitter: the n-th retry (n = 0, 1, …) waits a uniformly random
// time in [delay/2, delay] with delay = min(max, initial * 2^n).
struct backoff_policy {
    std::chrono::milliseconds initial{1000};
    std::chrono::milliseconds max{5 * 60 * 1000};
    int max_attempts = 8; // per request; then the sync stops as `offline` and keeps everything
};

// The delay before retry number `attempt` (0-based). Pure apart from the random source.
std::chrono::milliseconds backoff_delay(const backoff_policy& p, int attempt, std::mt19937_64& rng);

struct options {
    std::string state_dir;
    const catalog* collections = nullptr; // default: catalog::builtin()
    wall_clock wall = system_wall_ms;     // the tablet's wall clock (tests inject wrong ones)
    backoff_policy backoff;
    // Called instead of sleeping between retries (tests make it instant); default sleeps.
    std::function<void(std::chrono::milliseconds)> sleep;
    std::chrono::milliseconds timeout{30000}; // per network operation
    std::size_t push_batch = 200;
    std::uint32_t pull_limit = 500;
    // Trust: a SHA-256 fingerprint of the server certificate ("AB:CD:…" or plain hex; pins it
    // whatever its issuer), else a CA/certificate PEM file, else the system's CAs.
    std::string ca_file;
    std::uint64_t seed = std::random_device{}();
};

struct enrolment {
    std::string server; // https://host:port
    std::string device;
    std::string token;
    std::string user;
    std::string role;
    std::string township;
    std::string pin; // normalised fingerprint (lower-case hex), empty if none
};

// What a record shows a worker, in order of precedence.
enum class record_state {
    rejected, // the server refused the latest edit: show `message`, let the worker correct it
    conflict, // the worker's value lost (or won) a concurrent edit awaiting the township head
    returned, // the township head sent it back for correction (`_review_state == "has_issues"`)
    pending,  // local edits not yet acknowledged
    synced,   // as the server holds it
};
std::string_view to_string(record_state s) noexcept;

struct record_status {
    std::string collection;
    uuid id;
    record_state state = record_state::synced;
    std::string field;   // rejected/conflict: the field concerned (may be empty)
    std::string code;    // rejected: the server's code; conflict: "concurrent_edit"
    std::string message; // rejected: the server's message; returned: `_review_comment`
    boost::json::object fields;
};

struct status_counts {
    std::size_t records = 0, pending = 0, synced = 0, rejected = 0, conflicts = 0, returned = 0;
    std::size_t outbox = 0; // unacknowledged mutations
};

enum class sync_outcome {
    complete,      // pushed everything, pulled to the newest change
    offline,       // the network failed max_attempts times in a row; nothing lost, sync later
    revoked,       // 401 device_revoked: local data wiped, enrolment deleted
    unauthorized,  // 401 unauthorized: the token is unknown; enrol again
    user_disabled, // 401 user_disabled: data kept, contact the district office
    refused,       // another 4xx (forbidden, invalid request): retrying would not help
};
std::string_view to_string(sync_outcome o) noexcept;

enum class sync_phase { push, pull };

struct sync_progress {
    sync_phase phase = sync_phase::push;
    std::size_t done = 0;  // mutations acknowledged / records pulled so far
    std::size_t total = 0; // push: outbox size at start; pull: 0 (unknown)
    int retry = 0;         // >0 while retrying
};

struct sync_report {
    sync_outcome outcome = sync_outcome::complete;
    std::size_t pushed = 0, applied = 0, rejected = 0, conflicts = 0, restamped = 0;
    std::size_t gaps = 0, pulled = 0, pages = 0, resets = 0, retries = 0;
    std::string reset_reason; // the last reset's reason
    std::string error;        // the last error (network or server), for logs
    std::int64_t clock_offset_ms = 0;
};

class sync_client {
public:
    // Enrols a new tablet in `opts.state_dir` (which must not hold an enrolment yet) with a
    // one-time code. `pin` is an optional certificate fingerprint kept for later syncs.
    // Errors: errc::invalid_argument (bad URL, state folder in use), errc::unauthorized (bad
    // code), errc::rate_limited, errc::unsupported (TLS or network failure; `why` says).
    static result<std::unique_ptr<sync_client>>
    enrol(options opts, const std::string& server, const std::string& code,
          const std::string& pin = {}, const std::string& label = {}, std::string* why = nullptr);
    // Opens the tablet in `opts.state_dir`. errc::not_found when it holds no enrolment.
    static result<std::unique_ptr<sync_client>> open(options opts, std::string* why = nullptr);

    ~sync_client();
    sync_client(const sync_client&) = delete;
    sync_client& operator=(const sync_client&) = delete;

    // Pushes then pulls, with retries. Never throws for network or server problems: the
    // outcome says what happened. A storage failure of the local database throws.
    sync_report sync(const std::function<void(const sync_progress&)>& progress = {});

    // Local edits (see replica); each is one mutation in the outbox.
    result<uuid> create(std::string_view collection, const boost::json::object& fields);
    result<void> update(const uuid& id, const boost::json::object& fields);
    result<void> remove(const uuid& id);

    std::optional<record_status> status(const uuid& id);
    // Every local record with its status, plus records whose creation was rejected (kept here so
    // the worker can correct them).
    std::vector<record_status> records(std::string_view collection = {});
    status_counts counts();

    // False after a revocation (the client then refuses to sync and edit).
    bool enrolled() const noexcept { return enrolled_; }
    const enrolment& identity() const noexcept { return id_; }
    replica& local() noexcept { return *replica_; }
    const std::string& replica_path() const noexcept { return replica_path_; }

private:
    struct transport;
    sync_client(options opts, enrolment id);
    void forget_after_revocation();
    void remember_rejections(const push_request& sent, const push_result& res);

    options opts_;
    enrolment id_;
    std::string replica_path_;
    std::unique_ptr<replica> replica_;
    std::unique_ptr<transport> net_;
    std::mt19937_64 rng_;
    bool enrolled_ = true;
};

// "AB:CD:…", "abcd…" → "abcd…" (64 hex digits); empty when `s` is not a SHA-256 fingerprint.
std::string normalise_fingerprint(std::string_view s);

} // namespace fieldsync::client
