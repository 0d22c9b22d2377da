#include "sync/writer.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>
#include <iostream>
#include <stdexcept>
#include <vector>

namespace fieldsync {

writer::writer(sql::connection conn, writer_config cfg)
    : conn_(std::move(conn)), cfg_(std::move(cfg)) {
    const bool file = !conn_.path().empty() && conn_.path() != ":memory:";
    pipelined_ = cfg_.pipelined_sync && file;
    if (pipelined_) {
        // In WAL mode NORMAL still keeps the database consistent (the WAL is synced before every
        // checkpoint); the sync thread makes each commit durable before it is acknowledged.
        conn_.exec("PRAGMA synchronous=NORMAL");
        // Commits that a predecessor which crashed left in the page cache reach the disk before
        // anything is called durable. No WAL yet: nothing to sync.
        if (const int err = sync_wal(); err != 0 && err != ENOENT) {
            if (wal_fd_ >= 0)
                ::close(wal_fd_);
            throw std::runtime_error("cannot fsync " + conn_.path() +
                                     "-wal: " + std::strerror(err));
        }
    }
    if (cfg_.checkpoint_pages > 0 && file) {
        // The hook replaces SQLite's automatic checkpoint on this connection.
        checkpoint_conn_.emplace(conn_.path(), sql::open_mode::read_write);
        sqlite3_wal_hook(conn_.handle(), &writer::on_wal_commit, this);
        checkpoint_thread_ = std::thread([this] { checkpoint_loop(); });
    }
    if (pipelined_)
        sync_thread_ = std::thread([this] { sync_loop(); });
    thread_ = std::thread([this] { loop(); });
}

int writer::sync_wal() {
    if (wal_fd_ < 0) {
        // The WAL keeps its inode while any connection is open (the writer's is, until the
        // sync thread has stopped), so one descriptor serves for the writer's life. Its name
        // as SQLite has it (the database's real path, symbolic links resolved).
        const char* wal = sqlite3_filename_wal(sqlite3_db_filename(conn_.handle(), "main"));
        const std::string name = wal && *wal ? wal : conn_.path() + "-wal";
        wal_fd_ = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
        if (wal_fd_ < 0)
            return errno;
        // The WAL's directory entry too, once (SQLite syncs it itself only with
        // synchronous=FULL): a WAL created since the last sync of its folder could otherwise
        // vanish in a power cut with the commits in it.
        const auto slash = name.rfind('/');
        const std::string folder = slash == std::string::npos ? "." : name.substr(0, slash + 1);
        if (const int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir >= 0) {
            const int rc = ::fsync(dir);
            const int err = errno;
            ::close(dir);
            if (rc != 0)
                return err;
        }
    }
    if (cfg_.sync_file)
        return cfg_.sync_file(wal_fd_);
    return ::fdatasync(wal_fd_) == 0 ? 0 : errno;
}

void writer::sync_loop() {
    for (;;) {
        std::deque<committed_group> batch;
        bool failed = false;
        {
            std::unique_lock lock(mutex_);
            sync_cv_.wait(lock, [this] { return sync_stopping_ || !sync_queue_.empty(); });
            if (sync_queue_.empty())
                return; // stopping and drained
            batch.swap(sync_queue_);
            failed = sync_failed_;
        }
        // One fdatasync for every group committed so far.
        const int err = failed ? EIO : sync_wal();
        if (err == 0) {
            std::lock_guard lock(mutex_);
            // The batch's groups are the oldest unsynced ones, in order; before any
            // acknowledgement, so that a tablet pulls what it was told is stored.
            for (std::size_t i = 0; i < batch.size() && !unsynced_starts_.empty(); ++i)
                unsynced_starts_.pop_front();
            publish_limit();
        } else if (!failed) {
            std::size_t jobs = 0;
            for (const auto& g : batch)
                jobs += g.jobs.size();
            {
                std::lock_guard lock(mutex_);
                sync_failed_ = true;
                durable_cv_.notify_all(); // readers waiting for these groups give up
            }
            std::string line = boost::json::serialize(boost::json::object{
                {"level", "error"},
                {"event", "wal_sync_failed"},
                {"errno", err},
                {"what", std::strerror(err)},
                {"jobs_not_acknowledged", jobs},
                {"hint", "every write is refused until fieldsyncd is restarted; check the disk"}});
            line += '\n';
            std::cerr << line << std::flush;
        }
        for (auto& g : batch)
            for (std::size_t i = 0; i < g.jobs.size(); ++i)
                g.jobs[i].done(err != 0 ? boost::system::error_code(errc::storage_failure)
                                        : g.results[i]);
    }
}

void writer::publish_limit() {
    durable_limit_.store(unsynced_starts_.empty() ? UINT64_MAX : unsynced_starts_.front(),
                         std::memory_order_seq_cst);
    durable_cv_.notify_all();
}

bool writer::wait_durable(std::uint64_t mark) const {
    if (mark <= durable_limit_.load(std::memory_order_acquire))
        return true;
    std::unique_lock lock(mutex_);
    durable_cv_.wait(lock, [&] { return sync_failed_ || mark <= durable_limit_.load(); });
    return mark <= durable_limit_.load();
}

bool writer::failed() const {
    std::lock_guard lock(mutex_);
    return sync_failed_;
}

int writer::on_wal_commit(void* self, sqlite3* db, const char*, int pages) {
    auto* w = static_cast<writer*>(self);
    if (pages < 0)
        return SQLITE_OK;
    {
        // After a failed WAL fsync nothing is copied into the database file: the kernel may
        // have dropped pages of the WAL, and a later sync that succeeds would not bring them back.
        std::lock_guard lock(w->mutex_);
        if (w->sync_failed_)
            return SQLITE_OK;
    }
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
            if (sync_failed_)
                continue; // see on_wal_commit
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
    {
        std::lock_guard lock(mutex_);
        sync_stopping_ = true;
        sync_cv_.notify_all();
    }
    if (sync_thread_.joinable())
        sync_thread_.join(); // every committed group acknowledged
    if (wal_fd_ >= 0) {
        ::close(wal_fd_);
        wal_fd_ = -1;
    }
    if (checkpoint_conn_)
        sqlite3_wal_hook(conn_.handle(), nullptr, nullptr); // no commits after this
    {
        std::lock_guard lock(mutex_);
        checkpoint_stopping_ = true;
        checkpoint_cv_.notify_all();
    }
    if (checkpoint_thread_.joinable())
        checkpoint_thread_.join();
    bool failed = false;
    {
        std::lock_guard lock(mutex_);
        failed = sync_failed_;
    }
    if (failed) {
        // Nor when the connections close (SQLite checkpoints at the last one): the WAL stays as
        // it is for SQLite's recovery at the next start.
        sqlite3_db_config(conn_.handle(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
        if (checkpoint_conn_)
            sqlite3_db_config(checkpoint_conn_->handle(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1,
                              nullptr);
    }
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
        bool refuse = false;
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
            refuse = sync_failed_;
        }
        if (refuse) {
            for (auto& j : group)
                j.done(errc::storage_failure);
            continue;
        }
        std::vector<boost::system::error_code> results(group.size());
        boost::system::error_code group_error;
        bool unsynced = false;
        try {
            sql::transaction tx(conn_);
            if (pipelined_ && cfg_.mark) {
                // Read under the write lock (no other connection writes meanwhile) and published
                // before COMMIT makes the group visible.
                const std::uint64_t start = cfg_.mark(conn_);
                std::lock_guard lock(mutex_);
                unsynced_starts_.push_back(start);
                publish_limit();
                unsynced = true;
            }
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
            if (group_error && unsynced) { // rolled back: nothing of it to wait for
                unsynced_starts_.pop_back();
                publish_limit();
            }
        }
        if (!group_error && pipelined_) {
            std::lock_guard lock(mutex_);
            sync_queue_.push_back({std::move(group), std::move(results)});
            sync_cv_.notify_one();
            continue;
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
