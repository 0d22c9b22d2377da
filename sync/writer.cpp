#include "sync/writer.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <future>
#include <iostream>
#include <vector>

namespace fieldsync {

writer::writer(sql::connection conn, writer_config cfg) : conn_(std::move(conn)), cfg_(cfg) {
    if (cfg_.checkpoint_pages > 0 && !conn_.path().empty() && conn_.path() != ":memory:") {
        // The hook replaces SQLite's automatic checkpoint on this connection.
        checkpoint_conn_.emplace(conn_.path(), sql::open_mode::read_write);
        sqlite3_wal_hook(conn_.handle(), &writer::on_wal_commit, this);
        checkpoint_thread_ = std::thread([this] { checkpoint_loop(); });
    }
    thread_ = std::thread([this] { loop(); });
}

int writer::on_wal_commit(void* self, sqlite3* db, const char*, int pages) {
    auto* w = static_cast<writer*>(self);
    if (pages < 0)
        return SQLITE_OK;
    const auto n = static_cast<std::size_t>(pages);
    if (n >= w->cfg_.wal_pages_limit) {
        // Under sustained writes the thread's checkpoints never catch up with the end of the WAL
        // (the next group has begun before one ends), and the WAL only restarts from its
        // beginning when a write transaction begins after a checkpoint copied all of it: it grew
        // to 200 MB in a 300,000-record push-new run. Past the limit the writer copies it itself,
        // between two groups, as SQLite's own automatic checkpoint would (after the thread's
        // round in progress, if any); the next group then restarts the WAL.
        {
            std::unique_lock lock(w->mutex_);
            w->checkpoint_wanted_ = false;
            w->checkpoint_idle_cv_.wait(lock, [w] { return !w->checkpoint_running_; });
        }
        sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
        return SQLITE_OK;
    }
    if (n >= w->cfg_.checkpoint_pages) {
        std::lock_guard lock(w->mutex_);
        w->checkpoint_wanted_ = true;
        w->checkpoint_cv_.notify_one();
    }
    return SQLITE_OK;
}

void writer::checkpoint_loop() {
    for (;;) {
        {
            std::unique_lock lock(mutex_);
            checkpoint_cv_.wait(lock,
                                [this] { return checkpoint_stopping_ || checkpoint_wanted_; });
            if (checkpoint_stopping_)
                return;
            checkpoint_wanted_ = false;
            checkpoint_running_ = true;
        }
        // PASSIVE: copies what no reader still needs and never blocks the writer or readers.
        // A failure (disk full, I/O error) loses nothing: the pages stay in the WAL and the next
        // commit asks again.
        int log = 0, copied = 0;
        int rc = sqlite3_wal_checkpoint_v2(checkpoint_conn_->handle(), nullptr,
                                           SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
            std::string line = boost::json::serialize(
                boost::json::object{{"level", "error"},
                                    {"event", "checkpoint_failed"},
                                    {"sqlite_code", rc},
                                    {"what", sqlite3_errmsg(checkpoint_conn_->handle())}});
            line += '\n';
            std::cerr << line << std::flush;
        }
        std::lock_guard lock(mutex_);
        if (rc == SQLITE_OK)
            ++checkpoints_;
        checkpoint_running_ = false;
        checkpoint_idle_cv_.notify_all();
    }
}

writer::~writer() {
    stop();
}

void writer::submit(apply_fn apply, done_fn done, std::size_t weight) {
    {
        std::lock_guard lock(mutex_);
        if (!stopping_) {
            queue_.push_back({std::move(apply), std::move(done), weight});
            cv_.notify_one();
            return;
        }
    }
    done(errc::unsupported);
}

boost::system::error_code writer::run_sync(apply_fn apply) {
    std::promise<boost::system::error_code> p;
    auto f = p.get_future();
    submit(std::move(apply), [&p](boost::system::error_code ec) { p.set_value(ec); });
    return f.get();
}

void writer::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        cv_.notify_all();
    }
    if (thread_.joinable())
        thread_.join();
    if (checkpoint_conn_)
        sqlite3_wal_hook(conn_.handle(), nullptr, nullptr); // no commits after this
    {
        std::lock_guard lock(mutex_);
        checkpoint_stopping_ = true;
        checkpoint_cv_.notify_all();
    }
    if (checkpoint_thread_.joinable())
        checkpoint_thread_.join();
}

std::uint64_t writer::checkpoints() const {
    std::lock_guard lock(mutex_);
    return checkpoints_;
}

std::size_t writer::queue_depth() const {
    std::lock_guard lock(mutex_);
    return queue_.size();
}

std::uint64_t writer::groups_committed() const {
    std::lock_guard lock(mutex_);
    return groups_;
}

void writer::loop() {
    if (cfg_.nice != 0 &&
        setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), cfg_.nice) != 0) {
        const int err = errno;
        std::cerr << boost::json::serialize(boost::json::object{
                         {"level", "info"},
                         {"event", "writer_priority_not_set"},
                         {"nice", cfg_.nice},
                         {"why", std::strerror(err)},
                         {"hint", "grant CAP_SYS_NICE, or set writer_nice = 0"}})
                  << "\n"
                  << std::flush;
    }
    for (;;) {
        std::vector<job> group;
        {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty())
                return; // stopping and drained
            std::size_t weight = 0;
            while (!queue_.empty() && group.size() < cfg_.max_group &&
                   (group.empty() || weight + queue_.front().weight <= cfg_.max_group_weight)) {
                weight += queue_.front().weight;
                group.push_back(std::move(queue_.front()));
                queue_.pop_front();
            }
        }
        std::vector<boost::system::error_code> results(group.size());
        boost::system::error_code group_error;
        try {
            sql::transaction tx(conn_);
            for (std::size_t i = 0; i < group.size(); ++i) {
                sql::savepoint sp(conn_);
                try {
                    group[i].apply(conn_);
                    sp.release();
                } catch (const sql::error&) {
                    throw; // storage trouble: the whole group fails, nothing is acknowledged
                } catch (const std::exception&) {
                    results[i] = errc::invalid_argument; // undone by the savepoint
                }
            }
            tx.commit();
        } catch (const std::exception& e) {
            // Disk full, I/O error, read-only file: the transaction is rolled back, no job of the
            // group is acknowledged (each fails with storage_failure and is retried by its
            // client). One line per failed group, for the operator.
            group_error = errc::storage_failure;
            const auto* se = dynamic_cast<const sql::error*>(&e);
            std::string line =
                boost::json::serialize(boost::json::object{{"level", "error"},
                                                           {"event", "storage_failure"},
                                                           {"sqlite_code", se ? se->code : -1},
                                                           {"jobs_not_committed", group.size()},
                                                           {"what", e.what()}});
            line += '\n';
            std::cerr << line << std::flush;
        }
        {
            std::lock_guard lock(mutex_);
            ++groups_;
        }
        for (std::size_t i = 0; i < group.size(); ++i)
            group[i].done(group_error ? group_error : results[i]);
    }
}

reader_pool::reader_pool(const std::string& path, std::size_t threads) {
    for (std::size_t i = 0; i < threads; ++i)
        conns_.emplace_back(path, sql::open_mode::read_only);
    for (std::size_t i = 0; i < threads; ++i)
        threads_.emplace_back([this, i] { loop(i); });
}

reader_pool::~reader_pool() {
    stop();
}

void reader_pool::submit(job j) {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(j));
    cv_.notify_one();
}

void reader_pool::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        cv_.notify_all();
    }
    for (auto& t : threads_)
        if (t.joinable())
            t.join();
}

std::size_t reader_pool::queue_depth() const {
    std::lock_guard lock(mutex_);
    return queue_.size();
}

void reader_pool::loop(std::size_t index) {
    for (;;) {
        job j;
        {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty())
                return;
            j = std::move(queue_.front());
            queue_.pop_front();
        }
        try {
            j(conns_[index]);
        } catch (...) {
            // Jobs report their own failures; one that throws anyway must not end the pool.
        }
    }
}

} // namespace fieldsync
