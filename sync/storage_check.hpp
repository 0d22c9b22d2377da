// Checks of the district database file before fieldsyncd serves it: a damaged file, a file the
// process cannot write, and a write-ahead log that went missing while the server was down. Each
// is refused with a sentence for the operator instead of being served (and made worse).
//
// Thread-safety: free functions; call before the server opens the database.
#pragma once

#include "schema/errc.hpp"

#include <atomic>
#include <cstdint>
#include <string>

namespace fieldsync {

enum class startup_check {
    off,   // open only
    quick, // PRAGMA quick_check: every page readable, b-trees well formed (O(size), no indexes)
    full,  // PRAGMA integrity_check: also every index matches its table
};

// errc::storage_failure with the reason in `why` when the database at `path` must not be served:
// - `path-shm` exists without `path-wal`, and the shared-memory index says the log held
//   committed transactions not yet copied into the database (the WAL was deleted after a crash);
// - the file opens read-only (permissions, a read-only mount);
// - the file is not a SQLite database or the check finds damage.
// A missing database is fine (the server creates it).
result<void> check_database_file(const std::string& path, startup_check level, std::string* why);

// An online copy of the database at `path` into the file `out` while fieldsyncd keeps writing:
// one read transaction holds a single snapshot for the whole copy (without it, the backup API
// starts over whenever another connection commits between two steps, so under a steady stream
// of pushes it never finished). Written to `out`.partial, checked with integrity_check, made
// one self-contained file (journal_mode DELETE), fsynced and renamed, so `out` is never half a
// database. Returns the copy's last change sequence; errc::storage_failure with `why`.
// `cancel`, if given, is looked at between steps: set, the copy stops (errc::unsupported,
// "cancelled") and leaves nothing behind.
result<std::uint64_t> backup_database(const std::string& path, const std::string& out,
                                      std::string* why, const std::atomic<bool>* cancel = nullptr);

// Reads the file at `path` front to back, at most `max_bytes`, so that the pages are in the
// operating system's cache before a check walks them in b-tree order: on a cold cache that walk
// reads the disk in random order (a 2.8 GB district: 56 s), one sequential read first takes 4 s
// and the walk then 3 s. Returns the bytes read (0 if the file cannot be opened).
std::uint64_t read_into_page_cache(const std::string& path, std::uint64_t max_bytes);
// Half of the memory the system reports available (/proc/meminfo), or 1 GiB if it cannot tell:
// what read_into_page_cache may use without pushing out what other programs need.
std::uint64_t page_cache_budget();

} // namespace fieldsync
