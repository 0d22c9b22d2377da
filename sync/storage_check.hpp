// Checks of the district database file before fieldsyncd serves it: a damaged file, a file the
// process cannot write, and a write-ahead log that went missing while the server was down. Each
// is refused with a sentence for the operator instead of being served (and made worse).
//
// Thread-safety: free functions; call before the server opens the database.
#pragma once

#include "schema/errc.hpp"

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

} // namespace fieldsync
