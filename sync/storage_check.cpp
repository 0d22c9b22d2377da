#include "sync/storage_check.hpp"
#include "sync/sqlite.hpp"

#include <sqlite3.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <vector>

namespace fieldsync {

namespace fs = std::filesystem;

namespace {

errc refuse(std::string* why, std::string text) {
    if (why)
        *why = std::move(text);
    return errc::storage_failure;
}

// The WAL-index header in `-shm` (https://www.sqlite.org/walformat.html, native byte order):
// isInit at byte 12, mxFrame (last valid frame in the log) at 16, and in the checkpoint info
// nBackfill (frames already copied into the database) at 96. Frames between the two are
// committed transactions that exist only in the log.
struct wal_index {
    bool valid = false;
    std::uint32_t max_frame = 0;
    std::uint32_t backfilled = 0;
};

wal_index read_wal_index(const std::string& shm_path) {
    wal_index out;
    std::ifstream in(shm_path, std::ios::binary);
    unsigned char h[136];
    if (!in.read(reinterpret_cast<char*>(h), sizeof h))
        return out;
    std::memcpy(&out.max_frame, h + 16, 4);
    std::memcpy(&out.backfilled, h + 96, 4);
    out.valid = h[12] == 1;
    return out;
}

struct closer {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};

} // namespace

result<std::uint64_t> backup_database(const std::string& path, const std::string& out,
                                      std::string* why, const std::atomic<bool>* cancel) {
    const std::string tmp = out + ".partial";
    std::error_code ec;
    auto clean = [&] {
        for (const char* end : {"", "-wal", "-shm", "-journal"})
            fs::remove(tmp + end, ec);
    };
    clean();
    // The copy into `tmp`, closed again when this returns; the caller renames or removes it.
    auto copy = [&]() -> result<std::uint64_t> {
        sql::connection src(path, sql::open_mode::read_only);
        sql::connection dst(tmp, sql::open_mode::read_write_create);
        // Pages go straight into the file (no log beside it, so no second copy on the disk);
        // a copy cut off is thrown away anyway, and the whole file is fsynced at the end.
        dst.exec("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF");
        // A stop also cuts off the integrity check of a large copy.
        if (cancel)
            sqlite3_progress_handler(
                dst.handle(), 10000,
                [](void* flag) {
                    return static_cast<const std::atomic<bool>*>(flag)->load() ? 1 : 0;
                },
                const_cast<std::atomic<bool>*>(cancel));
        std::optional<sql::transaction> snapshot(std::in_place, src, sql::tx_mode::deferred);
        src.exec("SELECT count(*) FROM sqlite_schema"); // the first read fixes the snapshot
        sqlite3_backup* b = sqlite3_backup_init(dst.handle(), "main", src.handle(), "main");
        if (!b)
            return refuse(why, "backup failed: " + std::string(sqlite3_errmsg(dst.handle())));
        int rc = SQLITE_OK;
        bool cancelled = false;
        while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
            if (cancel && *cancel) {
                cancelled = true;
                break;
            }
            rc = sqlite3_backup_step(b, 1024);
            if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
                sqlite3_sleep(20);
        }
        sqlite3_backup_finish(b);
        snapshot.reset(); // the live WAL may be checkpointed again from here on
        if (cancelled) {
            if (why)
                *why = "backup cancelled";
            return errc::unsupported;
        }
        if (rc != SQLITE_DONE)
            return refuse(why, "backup failed: " + std::string(sqlite3_errstr(rc)));
        auto check = dst.integrity_check();
        if (check != "ok")
            return refuse(why, "the copy failed its integrity check: " + check);
        std::uint64_t seq = 0;
        {
            auto s = dst.cached("SELECT value FROM meta WHERE key = 'last_seq'");
            seq = s->step() ? static_cast<std::uint64_t>(s->int64(0)) : 0;
        }
        // A database of its own: once it is restored, every tablet's cursor (issued by the live
        // database, which went on after this copy) resets with database_changed and fetches
        // everything again. Without it a cursor not beyond the restored history passed as valid
        // and the tablet silently missed the changes numbered anew after the restore.
        dst.exec("UPDATE meta SET value = lower(hex(randomblob(8))) WHERE key = 'epoch'");
        dst.exec("PRAGMA journal_mode=DELETE"); // the copied header said WAL: one file
        return seq;
    };
    auto sync_path = [](const std::string& p) {
        int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
        bool synced = fd >= 0 && ::fsync(fd) == 0;
        if (fd >= 0)
            ::close(fd);
        return synced;
    };
    try {
        auto seq = copy();
        if (seq) {
            if (!sync_path(tmp)) {
                seq = refuse(why, "backup failed: cannot sync " + tmp);
            } else {
                fs::rename(tmp, out);
                // The rename itself survives a power cut only once the folder is synced.
                auto folder = fs::path(out).parent_path();
                sync_path(folder.empty() ? std::string(".") : folder.string());
            }
        }
        if (!seq)
            clean();
        return seq;
    } catch (const std::exception& e) {
        clean();
        if (cancel && *cancel) {
            if (why)
                *why = "backup cancelled";
            return errc::unsupported;
        }
        return refuse(why, std::string("backup failed: ") + e.what());
    }
}

std::uint64_t read_into_page_cache(const std::string& path, std::uint64_t max_bytes) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    std::vector<char> buf(1 << 20);
    std::uint64_t total = 0;
    while (total < max_bytes) {
        auto want =
            static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), max_bytes - total));
        auto got = ::read(fd, buf.data(), want);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break; // end of file, or an error the check itself will then report
        total += static_cast<std::uint64_t>(got);
    }
    ::close(fd);
    return total;
}

std::uint64_t page_cache_budget() {
    std::ifstream in("/proc/meminfo");
    std::string key;
    std::uint64_t kib = 0;
    std::string unit;
    while (in >> key >> kib >> unit)
        if (key == "MemAvailable:")
            return kib * 1024 / 2;
    return std::uint64_t{1} << 30;
}

result<void> check_database_file(const std::string& path, startup_check level, std::string* why) {
    std::error_code ec;
    if (!fs::exists(path, ec))
        return {};

    // Before SQLite opens the file: opening rebuilds the index from whatever log is there.
    const std::string wal = path + "-wal", shm = path + "-shm";
    if (fs::exists(shm, ec) && !fs::exists(wal, ec)) {
        auto idx = read_wal_index(shm);
        if (idx.valid && idx.max_frame > idx.backfilled)
            return refuse(why,
                          wal + " is missing, but " + shm + " shows that it held " +
                              std::to_string(idx.max_frame - idx.backfilled) +
                              " page writes of committed transactions not yet copied into the "
                              "database: serving it would lose acknowledged data. Put the -wal "
                              "file back and start again. Only if it is gone for good, delete " +
                              shm + " to start without those transactions.");
    }

    sql::configure_process(); // before SQLite's first use in fieldsyncd
    sqlite3* raw = nullptr;
    int rc =
        sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
    std::unique_ptr<sqlite3, closer> db(raw);
    if (rc != SQLITE_OK)
        return refuse(why, "cannot open " + path + ": " +
                               (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
    sqlite3_busy_timeout(raw, 10000);
    if (sqlite3_db_readonly(raw, "main") == 1)
        return refuse(why, path +
                               " can only be opened read-only (file permissions or a read-only "
                               "filesystem); fieldsyncd must write it. Fix the permissions or the "
                               "mount and start again.");
    if (level == startup_check::off)
        return {};

    // Warm the cache with one sequential pass (the log after the database: the check reads both).
    auto budget = page_cache_budget();
    for (const auto& file : {path, path + "-wal"})
        budget -= std::min(budget, read_into_page_cache(file, budget));

    const char* pragma =
        level == startup_check::full ? "PRAGMA integrity_check(1)" : "PRAGMA quick_check(1)";
    sqlite3_stmt* stmt = nullptr;
    rc = sqlite3_prepare_v2(raw, pragma, -1, &stmt, nullptr);
    std::string result;
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
            const auto* text = sqlite3_column_text(stmt, 0);
            result = text ? reinterpret_cast<const char*>(text) : "";
            rc = SQLITE_OK;
        }
    }
    std::string detail = rc == SQLITE_OK ? result : sqlite3_errmsg(raw);
    sqlite3_finalize(stmt);
    if ((rc & 0xff) == SQLITE_BUSY)
        return refuse(why, path +
                               " is locked by another process (another fieldsyncd on the same "
                               "data folder?): " +
                               detail);
    if (rc != SQLITE_OK || result != "ok")
        return refuse(why, path + " is damaged (" + detail +
                               "); refusing to serve it. Keep the file for inspection and restore "
                               "the last backup (docs/reliability.md, \"Faults\").");
    return {};
}

} // namespace fieldsync
