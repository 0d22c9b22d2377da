// A SQLite VFS that wraps the platform's default VFS and fails file operations on demand, for
// storage-fault tests (disk full, I/O errors, a database the OS opens read-only) without a small
// filesystem or root-only mounts. Fault injection by wrapping, not mocking: every operation goes
// to the real file unless a fault is switched on.
//
// install() registers it as the process's default VFS, so every connection opened afterwards
// (the server's writer and readers included) goes through it.
//
// Thread-safety: set() and failures() may be called from any thread (atomics).
#pragma once

#include <cstdint>

namespace fieldsync::testing::fault_vfs {

enum class fault {
    none,
    disk_full,      // xWrite, xTruncate and xSync of any file fail with SQLITE_FULL (ENOSPC)
    io_error,       // xWrite fails with SQLITE_IOERR_WRITE and xSync with SQLITE_IOERR_FSYNC
    read_only_open, // a database opened read-write is opened read-only, as for a 0444 file or a
                    // read-only mount (what the unix VFS does on EACCES/EROFS); writes then fail
};

// Registers the VFS as the default (idempotent).
void install();
void set(fault f);
fault current();
// Operations failed so far.
std::uint64_t failures();

// Switches a fault on for a scope.
class scoped {
public:
    explicit scoped(fault f) { set(f); }
    ~scoped() { set(fault::none); }
    scoped(const scoped&) = delete;
    scoped& operator=(const scoped&) = delete;
};

} // namespace fieldsync::testing::fault_vfs
