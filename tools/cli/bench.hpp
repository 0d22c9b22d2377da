// `fieldsync bench`: the parts shared by its files (tools/cli/bench*.cpp). Not a public API.
//
// bench.cpp            options, the scenario loop, the table and JSON report, progress line
// bench_net.cpp        the lean HTTPS load client, the fieldsyncd child process and its /proc stats
// bench_data.cpp       the district, realistic records, data folders, direct engine seeding
// bench_scenarios.cpp  the scenarios
//
// Thread-safety: a `https_conn` is used by one thread at a time; `progress` counters are atomic;
// everything else is built and read by the main thread.
#pragma once

#include "sync/hlc.hpp"
#include "sync/uuid.hpp"

#include <boost/json/object.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <sys/types.h>

namespace fieldsync::cli::bench {

// ---- Options ---------------------------------------------------------------------------------

struct settings {
    std::vector<std::string> scenarios;
    std::size_t tablets = 0;          // 0: the scenario's default
    std::size_t batch = 0;            // 0: the scenario's default
    std::vector<std::size_t> records; // empty: the scenario's default; several: a growth series
    bool small = false;               // --records small: tiny sizes for the smoke test
    std::size_t scale = 1;            // demo district size (0: divisions and bench users only)
    std::size_t idle = 1000;          // idle-connections: idle keep-alive connections
    std::int64_t window_ms = 2000;    // day-end: pushes arrive over this window (0: at once)
    double mixed_share = 0.25;        // push-mixed: share of mutations that edit shared records
    bool json = false;
    bool keep = false;
    bool progress = false;   // stderr is a terminal
    std::string server_url;  // target an existing server instead of starting one
    std::string ca_file;     // --server: trust (PEM); empty: system CAs
    bool insecure = false;   // --server: do not verify the certificate
    std::string admin_code;  // --server: a district admin's enrolment code
    pid_t server_pid = 0;    // --server: its pid on this machine, for RSS/CPU
    std::string data_dir;    // where data folders are made (default: a temp folder)
    std::string profile_dir; // --profile: `perf record -g` of the server's timed phase, here
    std::vector<std::string> server_args; // passed to fieldsyncd (after `--`)
};

// ---- Progress (stderr, only on a terminal) -----------------------------------------------------

struct progress {
    std::atomic<std::uint64_t> done{0};
    std::atomic<std::uint64_t> total{0};
    std::atomic<const char*> phase{"setting up"}; // a string literal
};

// ---- Results -----------------------------------------------------------------------------------

struct latencies {
    std::vector<double> ms;
    void add(double v) { ms.push_back(v); }
    void merge(const latencies& o) { ms.insert(ms.end(), o.ms.begin(), o.ms.end()); }
    double percentile(double p) const; // nearest rank; 0 when empty
};

struct proc_sample {
    double cpu_s = 0;  // utime + stime
    double rss_mb = 0; // VmRSS
    double hwm_mb = 0; // VmHWM (peak)
    bool ok = false;
};
proc_sample sample_process(pid_t pid);
double self_cpu_seconds(); // this process, user + system

struct scenario_result {
    std::string scenario;
    std::string client; // which client drove it
    std::size_t tablets = 0;
    std::size_t records = 0;  // records pushed (applied) or pulled
    std::size_t requests = 0; // timed requests
    std::size_t errors = 0;   // failed requests (transport or unexpected status)
    double wall_s = 0;
    latencies lat;                            // the figure's request latency
    std::map<std::string, latencies> by_kind; // "push", "pull", …
    std::optional<double> server_peak_rss_mb, server_rss_mb, server_cpu_s;
    double client_cpu_s = 0;
    std::optional<std::int64_t> stored; // records the server's database holds for this run
    std::int64_t expected_stored = -1;  // what it should hold (-1: not checked)
    std::string target;                 // the target, as text
    std::optional<bool> meets_target;
    boost::json::object extra; // scenario-specific figures
    std::vector<std::string> notes;

    double records_per_s() const { return wall_s > 0 ? static_cast<double>(records) / wall_s : 0; }
    double requests_per_s() const {
        return wall_s > 0 ? static_cast<double>(requests) / wall_s : 0;
    }
};

// ---- Network -----------------------------------------------------------------------------------

struct endpoint {
    std::string host; // name or address
    std::string port;
    std::string ca_file; // PEM to verify against; empty: system CAs
    bool verify = true;  // false: --insecure
};
// Parses https://HOST:PORT[/]; nullopt for anything else.
std::optional<endpoint> parse_url(const std::string& url);

struct reply {
    unsigned status = 0;
    std::string body;
};

// One keep-alive HTTPS/1.1 connection (Beast over OpenSSL, blocking). Throws on transport
// failures (boost::system::system_error).
class https_conn {
public:
    explicit https_conn(const endpoint& ep);
    ~https_conn();
    https_conn(const https_conn&) = delete;
    https_conn& operator=(const https_conn&) = delete;

    reply post(const std::string& target, std::string body, const std::string& token = {});
    reply get(const std::string& target, const std::string& token = {});
    void close();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// fieldsyncd started by the bench as a child process on a free loopback port.
class server_process {
public:
    // Starts `fieldsyncd` (next to this executable) on `data_dir`, its output in
    // data_dir/fieldsyncd.log; waits until it listens. Throws if it does not start.
    server_process(const std::string& data_dir, const std::vector<std::string>& extra_args);
    ~server_process(); // stop()
    server_process(const server_process&) = delete;
    server_process& operator=(const server_process&) = delete;
    // SIGTERM and wait; returns the exit status (0 for a clean stop).
    int stop();
    pid_t pid() const { return pid_; }
    endpoint where() const;

private:
    std::string dir_;
    pid_t pid_ = -1;
    unsigned short port_ = 0;
};

// `perf record -g` of process `pid` into `out` until stop_profiler (SIGINT, wait); -1 if perf
// cannot be started.
pid_t start_profiler(pid_t pid, const std::string& out);
void stop_profiler(pid_t perf);

// Raises this process's open-file limit to its hard limit (children inherit it).
void raise_fd_limit();

// ---- Data --------------------------------------------------------------------------------------

struct township_info {
    std::string code, name;
    std::vector<std::string> villages;
};
// The demo district's townships (tools/demo/district.json, embedded).
const std::vector<township_info>& district_townships();
const township_info* find_township(const std::string& code);

// A tablet's hybrid logical clock as the bench stamps it.
class tablet_clock {
public:
    explicit tablet_clock(std::string device) : device_(std::move(device)) {}
    std::string next(); // "<ms>:<counter>:<device>"
    const std::string& device() const { return device_; }

private:
    std::string device_;
    std::int64_t ms_ = 0;
    std::uint32_t counter_ = 0;
};

// Realistic new records of one tablet's township, as push-mutation JSON text: a household, two
// persons of it (valid ID and certificate numbers), two home visits to them, in turn, so that
// references point at records made earlier in the same or an earlier push.
class record_factory {
public:
    record_factory(std::uint64_t seed, const township_info& t, std::string worker);
    // Appends one mutation object (no separator) to `out`.
    void new_record(std::string& out, std::uint64_t seq, const std::string& clock);
    // A new household (whatever comes next in turn).
    void new_household(std::string& out, std::uint64_t seq, const std::string& clock);
    // An edit of a shared household: per_capita_income and notes, based on `base`.
    void edit_household(std::string& out, std::uint64_t seq, const std::string& clock,
                        const std::string& id, const std::string& base);
    // The id of the last household made (valid after the first new_record).
    const std::string& last_household() const { return household_; }

private:
    std::mt19937_64 rng_;
    uuid_v7_generator ids_;
    const township_info& town_;
    std::string worker_;
    std::uint64_t made_ = 0;
    std::string household_, person_, village_;
};

// Wraps mutations (comma-separated JSON objects) into a push body.
std::string push_body(const std::string& mutations);

// The district database in `dir`: the demo district (`fieldsync demo --scale N`, quiet) when
// scale ≥ 1, else just the migrated database with the divisions.
void prepare_district(const std::string& dir, std::size_t scale);
// Writes `count` new records into township `t` directly through the engine (as the server's
// writer would, with the rollups observer), before the server starts. Returns the count written.
std::size_t seed_township(const std::string& dir, const township_info& t, std::size_t count,
                          progress* p);
// Field-worker users bench-<run>-<i> in the given townships and one enrolment code each, made
// directly in the database (as `fieldsync users add` / `tablets code` do).
std::vector<std::string> make_codes(const std::string& dir, const std::vector<std::string>& towns,
                                    const std::string& run);
// SELECT count(*) … on the database in `dir` (read-only).
std::int64_t count_rows(const std::string& dir, const std::string& sql);

// ---- Scenarios ---------------------------------------------------------------------------------

// What a scenario runs against: a server the bench started (with its data folder) or --server.
class target {
public:
    virtual ~target() = default;
    virtual endpoint where() const = 0;
    // Enrolment codes for field workers in these townships.
    virtual std::vector<std::string> codes(const std::vector<std::string>& townships) = 0;
    virtual pid_t pid() const = 0;                      // 0 if unknown
    virtual std::string data_dir() const { return {}; } // empty for --server
};

struct scenario_context {
    const settings& opt;
    target& srv;
    progress& prog;
    std::size_t records = 0; // this run's size (0: default)
    std::string run_id;      // distinguishes this run's users
    std::string scenario;    // file name for --profile (the scenario, with its size)
};

using scenario_fn = scenario_result (*)(scenario_context&);
struct scenario_info {
    const char* name;
    scenario_fn run;
    // What the bench must prepare before starting its own server.
    enum class seed { none, township } seeding;
    const char* help;
};
const std::vector<scenario_info>& scenarios();
// Default sizes (for --records small too).
std::size_t default_records(const std::string& scenario, bool small);

// The SQLite reference (no server): durable appends with time-ordered and random keys.
scenario_result sqlite_reference(const settings& opt, const std::string& dir, std::size_t rows,
                                 progress& prog);

} // namespace fieldsync::cli::bench
