// The single writer: one thread owns the only read-write connection and applies queued jobs
// (pushes and administrative writes) in groups, one transaction and one fsync per group. Each
// job runs in its own savepoint, so a failing job is undone alone. A job's completion is called
// only after the group is durable: committed, and its WAL frames on the disk.
//
// Pipelined sync (the default for a database file): COMMIT writes the group's WAL frames without
// waiting for the disk (synchronous=NORMAL) and the sync thread fdatasyncs the WAL and then
// completes the group's jobs, while the writer thread already applies the next group. One
// fdatasync covers every group committed before it began. Readers see a commit before it is on
// the disk, so whatever hands out positions in the change sequence (pulls' cursors) must serve
// only up to durable_limit(). If an fdatasync fails, the jobs it covered are refused and so is
// every later one: after a failed fsync the kernel may have dropped the pages, and only a restart
// (SQLite's recovery from what is on the disk) tells what is stored.
//
// Thread-safety: submit() may be called from any thread. Completions run on the sync thread (the
// writer thread when the sync is not pipelined or the group failed); they must be quick (the
// server posts them back to the connection's strand).
#pragma once

#include "schema/errc.hpp"
#include "sync/sqlite.hpp"

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace fieldsync {

struct writer_config {
    std::size_t max_group = 256; // jobs per transaction
    // Work per transaction, in the jobs' weights (a push weighs its number of mutations): a burst
    // of pushes is committed in several groups, so the first ones are acknowledged without
    // waiting for the whole burst. A heavier single job still runs alone.
    std::size_t max_group_weight = 500;
    // WAL checkpoints run on a thread of their own, with a connection of their own, once the WAL
    // holds this many pages after a commit (SQLite's default threshold), so that the writer never
    // copies pages into the database file or waits for its fsync between two groups. 0: SQLite's
    // automatic checkpoint on the writer thread.
    std::size_t checkpoint_pages = 1000;
    // Past this many pages in the WAL after a commit, the writer checkpoints on its own thread
    // before the next group (see on_wal_commit): bounds the WAL under sustained writes.
    std::size_t wal_pages_limit = 8000;
    // The writer thread's nice value (0: as the process). Every push waits for the writer, so
    // under CPU contention it should not queue behind the readers and network threads. Measured
    // (day-end, 12 runs each): push p99 median 23.7 ms at -10 against 24.4 ms at 0, but runs with
    // p99 above 30 ms 1 in 12 against 5 in 12: a thinner tail, not a lower median. Below 0 needs
    // root or CAP_SYS_NICE; without them the thread keeps the process's priority and says so
    // once on stderr.
    int nice = 0;
    // Commit without waiting for the disk and fdatasync the WAL on a thread of its own (above).
    // false: every COMMIT waits for its fsync on the writer thread (synchronous=FULL).
    bool pipelined_sync = true;
    // The position a group starts from (the server passes engine::last_seq), read on the writer
    // thread inside the group's transaction: see durable_limit().
    std::function<std::uint64_t(sql::connection&)> mark;
    // How the WAL is made durable: 0 or an errno. Default fdatasync; tests inject failures.
    std::function<int(int fd)> sync_file;
};

class writer {
public:
    using apply_fn = std::function<void(sql::connection&)>; // may throw; runs in a savepoint
    using done_fn = std::function<void(boost::system::error_code)>;

    // Takes ownership of the connection (already migrated) and starts the thread.
    writer(sql::connection conn, writer_config cfg = {});
    ~writer(); // stop()
    writer(const writer&) = delete;
    writer& operator=(const writer&) = delete;

    // Queues a job of `weight` units of work (see writer_config). After stop() the job is
    // completed at once with errc::unsupported.
    void submit(apply_fn apply, done_fn done, std::size_t weight = 1);
    // Runs `apply` in the writer and waits for its durable completion (admin tools, tests).
    boost::system::error_code run_sync(apply_fn apply);
    // Finishes every queued job, then joins the thread. Idempotent.
    void stop();

    std::size_t queue_depth() const;
    std::uint64_t groups_committed() const;
    std::uint64_t checkpoints() const; // completed by the checkpoint thread
    // Everything a reader can see up to this position (config.mark) is on the disk: the mark at
    // the start of the oldest group committed (or being committed) but not yet synced, and
    // UINT64_MAX when there is none. Writes by other connections (admin tools, synchronous=FULL)
    // are durable when visible and not held back. Set before a group's COMMIT makes it visible.
    // Any thread.
    const std::atomic<std::uint64_t>& durable_limit() const noexcept { return durable_limit_; }
    // Waits until everything up to `mark` is on the disk (the fdatasync under way and at most
    // one more) and returns true; false if it never will be (a WAL fsync failed). A reader whose
    // snapshot reached `mark` calls this before handing out anything of it: serving only part
    // of a snapshot is not enough, since an edit moves a record to a new position and would
    // hide the version on the disk. Any thread.
    bool wait_durable(std::uint64_t mark) const;
    // True once an fdatasync failed: every job is refused until the process restarts.
    bool failed() const;

private:
    struct job {
        apply_fn apply;
        done_fn done;
        std::size_t weight = 1;
    };
    struct committed_group { // waiting for the sync thread
        std::vector<job> jobs;
        std::vector<boost::system::error_code> results;
    };
    void loop();
    void checkpoint_loop();
    void sync_loop();
    int sync_wal(); // 0 or an errno
    static int on_wal_commit(void* self, sqlite3* db, const char* name, int pages);

    sql::connection conn_; // used by the writer thread only
    writer_config cfg_;
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<job> queue_;    // guarded by mutex_
    bool stopping_ = false;    // guarded by mutex_
    std::uint64_t groups_ = 0; // guarded by mutex_

    std::optional<sql::connection> checkpoint_conn_; // used by checkpoint_thread_ only
    std::condition_variable checkpoint_cv_;
    std::condition_variable checkpoint_idle_cv_;
    bool checkpoint_wanted_ = false;   // guarded by mutex_
    bool checkpoint_running_ = false;  // guarded by mutex_
    bool checkpoint_stopping_ = false; // guarded by mutex_
    std::uint64_t checkpoints_ = 0;    // guarded by mutex_
    std::thread checkpoint_thread_;

    bool pipelined_ = false;
    std::atomic<std::uint64_t> durable_limit_{UINT64_MAX};
    mutable std::condition_variable durable_cv_; // durable_limit_ moved or sync_failed_ set
    std::deque<std::uint64_t> unsynced_starts_;  // guarded by mutex_; one per group not yet synced
    void publish_limit();                        // from unsynced_starts_; mutex_ held
    std::condition_variable sync_cv_;
    std::deque<committed_group> sync_queue_; // guarded by mutex_
    bool sync_stopping_ = false;             // guarded by mutex_
    bool sync_failed_ = false;               // guarded by mutex_
    int wal_fd_ = -1;                        // used by the sync thread (and the constructor)
    std::thread sync_thread_;
    std::thread thread_;
};

// A fixed pool of reader threads, each with its own read-only connection (WAL snapshots).
// Thread-safety: submit() may be called from any thread; jobs run on a pool thread.
class reader_pool {
public:
    using job = std::function<void(sql::connection&)>; // must not throw past itself

    reader_pool(const std::string& path, std::size_t threads);
    ~reader_pool(); // stop()
    reader_pool(const reader_pool&) = delete;
    reader_pool& operator=(const reader_pool&) = delete;

    void submit(job j);
    void stop();
    std::size_t queue_depth() const;

private:
    void loop(std::size_t index);

    std::vector<sql::connection> conns_; // conns_[i] is used by threads_[i] only
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<job> queue_; // guarded by mutex_
    bool stopping_ = false; // guarded by mutex_
    std::vector<std::thread> threads_;
};

} // namespace fieldsync
