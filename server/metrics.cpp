#include "server/metrics.hpp"

#include <cstdio>

namespace fieldsync::server {

void metrics::request(const std::string& route, unsigned status, double seconds) {
    std::lock_guard lock(mutex_);
    ++requests_[{route, status}];
    auto& h = latency_[route];
    std::size_t i = 0;
    while (i < buckets.size() && seconds > buckets[i])
        ++i;
    if (i < buckets.size())
        ++h.counts[i];
    ++h.count;
    h.sum += seconds;
}

void metrics::mutations(std::uint64_t applied, std::uint64_t rejected, std::uint64_t duplicates,
                        std::uint64_t conflicts_opened) {
    applied_ += applied;
    rejected_ += rejected;
    duplicates_ += duplicates;
    conflicts_ += conflicts_opened;
}

namespace {
std::string num(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}
} // namespace

std::string metrics::render(const gauges& g) const {
    std::string out;
    out += "# HELP fieldsync_http_requests_total HTTP requests by route and status.\n"
           "# TYPE fieldsync_http_requests_total counter\n";
    std::map<std::string, histogram> latency;
    {
        std::lock_guard lock(mutex_);
        for (const auto& [key, n] : requests_)
            out += "fieldsync_http_requests_total{route=\"" + key.first + "\",status=\"" +
                   std::to_string(key.second) + "\"} " + std::to_string(n) + "\n";
        latency = latency_;
    }
    out += "# HELP fieldsync_http_request_duration_seconds Time from request read to response "
           "queued.\n# TYPE fieldsync_http_request_duration_seconds histogram\n";
    for (const auto& [route, h] : latency) {
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < buckets.size(); ++i) {
            cumulative += h.counts[i];
            out += "fieldsync_http_request_duration_seconds_bucket{route=\"" + route + "\",le=\"" +
                   num(buckets[i]) + "\"} " + std::to_string(cumulative) + "\n";
        }
        out += "fieldsync_http_request_duration_seconds_bucket{route=\"" + route +
               "\",le=\"+Inf\"} " + std::to_string(h.count) + "\n";
        out += "fieldsync_http_request_duration_seconds_sum{route=\"" + route + "\"} " +
               num(h.sum) + "\n";
        out += "fieldsync_http_request_duration_seconds_count{route=\"" + route + "\"} " +
               std::to_string(h.count) + "\n";
    }
    auto counter = [&](const char* name, const char* help, std::uint64_t v) {
        out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" +
               name + " " + std::to_string(v) + "\n";
    };
    auto gauge = [&](const char* name, const char* help, std::int64_t v) {
        out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n" + name +
               " " + std::to_string(v) + "\n";
    };
    counter("fieldsync_mutations_applied_total", "Pushed mutations applied.", applied_.load());
    counter("fieldsync_mutations_rejected_total", "Pushed mutations rejected (quarantined).",
            rejected_.load());
    counter("fieldsync_mutations_duplicate_total",
            "Pushed mutations seen before (acknowledged again, not re-applied).",
            duplicates_.load());
    counter("fieldsync_conflicts_opened_total", "Concurrent edits kept for review.",
            conflicts_.load());
    counter("fieldsync_writer_groups_committed_total", "Writer transactions committed.",
            g.writer_groups_committed);
    counter("fieldsync_writer_checkpoints_total",
            "WAL checkpoints completed by the checkpoint thread.", g.writer_checkpoints);
    counter("fieldsync_pull_pages_prepared_used_total",
            "Pull pages answered from a page prepared while the previous one travelled.",
            g.pull_pages_prepared_used);
    counter("fieldsync_pull_pages_prepared_waited_total",
            "Of those, pages the request waited for because they were still being prepared.",
            g.pull_pages_prepared_waited);
    gauge("fieldsync_pull_pages_prepared_bytes", "Prepared pull pages waiting to be asked for.",
          static_cast<std::int64_t>(g.pull_pages_prepared_bytes));
    gauge("fieldsync_open_connections", "Open client connections.", open_connections_.load());
    counter("fieldsync_backups_total", "Backups fieldsyncd made since it started.",
            backups_.load());
    counter("fieldsync_backup_failures_total", "Backups that failed since fieldsyncd started.",
            backup_failures_.load());
    gauge("fieldsync_backup_last_success_timestamp_seconds",
          "When the newest backup in the backup folder was made (Unix time; 0: none).",
          last_backup_s_.load());
    gauge("fieldsync_writer_queue_depth", "Jobs waiting for the writer thread.",
          static_cast<std::int64_t>(g.writer_queue_depth));
    gauge("fieldsync_reader_queue_depth", "Jobs waiting for a read connection.",
          static_cast<std::int64_t>(g.reader_queue_depth));
    return out;
}

} // namespace fieldsync::server
