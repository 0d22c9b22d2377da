// Counters behind GET /metrics (Prometheus text format 0.0.4): requests by route and status, a
// latency histogram per route, mutation outcomes, conflicts opened, open connections. Gauges
// owned elsewhere (writer queue depth) are passed in when rendering.
//
// Thread-safety: every method may be called from any thread; counters are atomics or guarded by
// mutex_.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace fieldsync::server {

class metrics {
public:
    static constexpr std::array<double, 12> buckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                       0.1,   0.25,   0.5,   1.0,  2.5,   10.0};

    // `route` is one of a fixed set of labels (unknown paths are "other"): bounded cardinality.
    void request(const std::string& route, unsigned status, double seconds);
    void mutations(std::uint64_t applied, std::uint64_t rejected, std::uint64_t duplicates,
                   std::uint64_t conflicts_opened);
    void connection_opened() { open_connections_.fetch_add(1, std::memory_order_relaxed); }
    void connection_closed() { open_connections_.fetch_sub(1, std::memory_order_relaxed); }
    std::int64_t open_connections() const { return open_connections_.load(); }
    // fieldsyncd's own backups (server/backups.hpp): `at_unix_s` is when the newest good copy was
    // made (also the one found in the folder at start); a failure only counts.
    void backup_made(std::int64_t at_unix_s) {
        backups_.fetch_add(1, std::memory_order_relaxed);
        backup_found(at_unix_s);
    }
    void backup_found(std::int64_t at_unix_s) { last_backup_s_.store(at_unix_s); }
    void backup_failed() { backup_failures_.fetch_add(1, std::memory_order_relaxed); }

    struct gauges {
        std::size_t writer_queue_depth = 0;
        std::size_t reader_queue_depth = 0;
        std::uint64_t writer_groups_committed = 0;
        std::uint64_t writer_checkpoints = 0;
        std::size_t pull_pages_prepared_bytes = 0; // prepared next pages waiting (pull_prefetch)
        std::uint64_t pull_pages_prepared_used = 0;
        std::uint64_t pull_pages_prepared_waited = 0; // of which the request waited for
    };
    std::string render(const gauges& g) const;

private:
    struct histogram {
        std::array<std::uint64_t, buckets.size()> counts{}; // non-cumulative per bucket
        std::uint64_t count = 0;
        double sum = 0;
    };
    mutable std::mutex mutex_;
    std::map<std::pair<std::string, unsigned>, std::uint64_t> requests_; // guarded by mutex_
    std::map<std::string, histogram> latency_;                           // guarded by mutex_
    std::atomic<std::uint64_t> applied_{0}, rejected_{0}, duplicates_{0}, conflicts_{0};
    std::atomic<std::int64_t> open_connections_{0};
    std::atomic<std::uint64_t> backups_{0}, backup_failures_{0};
    std::atomic<std::int64_t> last_backup_s_{0};
};

} // namespace fieldsync::server
