// fieldsyncd's settings and where they come from: built-in defaults, then a config file
// (`key = value` lines, # comments), then FIELDSYNC_* environment variables, then command-line
// flags. Later sources win.
//
// Thread-safety: a plain value; read-only once the server starts.
#pragma once

#include "schema/errc.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace fieldsync::server {

struct config {
    std::string data_dir;                  // data:  the SQLite file and the dev certificate
    std::string listen = "127.0.0.1:8443"; // listen: ADDR:PORT (port 0: any free port)
    std::string cert_file;                 // cert:  PEM certificate chain (production)
    std::string key_file;                  // key:   PEM private key
    std::string collections_file;          // collections: extra declarations (JSON) to accept
    std::size_t threads = 2;               // threads: network threads
    std::size_t readers = 2;               // readers: read connections (pulls, admin reads)
    std::size_t group_mutations = 500;     // group_mutations: mutations per writer transaction
    int writer_nice = -10; // writer_nice: the writer thread's nice value (writer_config::nice)
    // pipelined_sync: fdatasync the WAL on a thread of its own while the writer applies the next
    // group (writer_config::pipelined_sync); false: every COMMIT waits for its own fsync.
    bool pipelined_sync = true;
    // Not a setting: how the WAL is fsynced (writer_config::sync_file), for fault tests. Empty:
    // fdatasync.
    std::function<int(int fd)> wal_sync;
    std::size_t max_body_bytes = 8 << 20;   // max_body_bytes: 413 above this
    std::size_t max_header_bytes = 16384;   // max_header_bytes
    std::size_t max_json_depth = 32;        // max_json_depth
    std::size_t max_pipeline = 8;           // max_pipeline: requests in flight per connection
    std::size_t max_connections = 1024;     // max_connections
    std::int64_t header_timeout_ms = 15000; // header_timeout_ms: idle / slow headers
    std::int64_t body_timeout_ms = 60000;   // body_timeout_ms: slow bodies
    std::int64_t write_timeout_ms = 60000;  // write_timeout_ms
    std::int64_t shutdown_grace_ms = 20000; // shutdown_grace_ms: in-flight requests at SIGTERM
    std::int64_t max_clock_ahead_ms = 5 * 60 * 1000; // max_clock_ahead_ms (engine)
    // month_slice_persons: a month's person-based figures are computed this many persons at a
    // time between pushes (rollup_config::open_slice_persons); 0: at once, inside the push that
    // opens the month (5 s of the writer at ten times a full district).
    std::size_t month_slice_persons = 1000;
    // pull_page_keep_ms: a prepared next page of a pull (pull_prefetch) nobody asked for is
    // dropped after this long; the server sweeps them every half of it.
    std::int64_t pull_page_keep_ms = 10000;
    // fieldsyncd's own backups (server/backups.hpp): a copy every backup_interval_s (0: none)
    // into backup_dir (empty: <data>/backups), the newest backup_keep kept. The first comes
    // 10 minutes after start when the newest there is older than an interval.
    std::string backup_dir;
    std::int64_t backup_interval_s = 24 * 60 * 60;
    std::size_t backup_keep = 7;
    std::string port_file;    // port_file: written with the bound port once listening (tests)
    bool log_requests = true; // log_requests
    // The web page's sessions (docs/protocol.md, "Web sessions and the web page").
    std::int64_t session_idle_s = 30 * 60;     // session_idle_s: idle web sessions end
    std::int64_t session_max_s = 12 * 60 * 60; // session_max_s: every web session ends
    int login_failures_per_user = 5;           // login_failures_per_user: then 429
    int login_failures_per_address = 20;       // login_failures_per_address: then 429
    std::int64_t login_window_s = 15 * 60;     // login_window_s: failures counted over this
    std::string web_origin; // web_origin: https://host[:port] also accepted as Origin
};

// Sets one setting by its key (as in the file; flags use --key, env FIELDSYNC_KEY).
result<void> set(config& c, const std::string& key, const std::string& value, std::string* why);

// Builds the configuration from all sources. `args` are the command-line arguments after the
// program name. errc::invalid_argument with a sentence in `why` for anything unusable.
result<config> load(const std::vector<std::string>& args,
                    const std::map<std::string, std::string>& env, std::string* why);

// The FIELDSYNC_* variables of this process.
std::map<std::string, std::string> environment();

std::string usage();

} // namespace fieldsync::server
