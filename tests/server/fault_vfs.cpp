#include "fault_vfs.hpp"

#include <sqlite3.h>

#include <atomic>
#include <cstddef>
#include <mutex>
#include <stdexcept>

namespace fieldsync::testing::fault_vfs {

namespace {

std::atomic<fault> active{fault::none};
std::atomic<std::uint64_t> failed{0};
sqlite3_vfs* real_vfs = nullptr; // set once by install()

// Our file: the io-methods pointer SQLite sees, then the real VFS's file right behind it.
struct file {
    sqlite3_file base;
    sqlite3_file* real;
};
constexpr std::size_t header_size = (sizeof(file) + 15) & ~std::size_t{15};

sqlite3_file* real_of(sqlite3_file* f) {
    return reinterpret_cast<file*>(f)->real;
}

// What a write-side operation (xWrite, xTruncate, xSync) fails with under the active fault, or
// SQLITE_OK to go on to the real file: SQLITE_FULL when the disk is full, the operation's own
// `io_error_code` for an I/O error.
int injected_fault(int io_error_code) {
    switch (active.load()) {
    case fault::disk_full:
        ++failed;
        return SQLITE_FULL;
    case fault::io_error:
        ++failed;
        return io_error_code;
    default:
        return SQLITE_OK;
    }
}

int f_close(sqlite3_file* f) {
    return real_of(f)->pMethods->xClose(real_of(f));
}
int f_read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
    return real_of(f)->pMethods->xRead(real_of(f), buf, n, off);
}
int f_write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
    if (int rc = injected_fault(SQLITE_IOERR_WRITE))
        return rc;
    return real_of(f)->pMethods->xWrite(real_of(f), buf, n, off);
}
int f_truncate(sqlite3_file* f, sqlite3_int64 size) {
    if (int rc = injected_fault(SQLITE_IOERR_TRUNCATE))
        return rc;
    return real_of(f)->pMethods->xTruncate(real_of(f), size);
}
int f_sync(sqlite3_file* f, int flags) {
    if (int rc = injected_fault(SQLITE_IOERR_FSYNC))
        return rc;
    return real_of(f)->pMethods->xSync(real_of(f), flags);
}
int f_file_size(sqlite3_file* f, sqlite3_int64* size) {
    return real_of(f)->pMethods->xFileSize(real_of(f), size);
}
int f_lock(sqlite3_file* f, int level) {
    return real_of(f)->pMethods->xLock(real_of(f), level);
}
int f_unlock(sqlite3_file* f, int level) {
    return real_of(f)->pMethods->xUnlock(real_of(f), level);
}
int f_check_reserved(sqlite3_file* f, int* out) {
    return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}
int f_file_control(sqlite3_file* f, int op, void* arg) {
    return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}
int f_sector_size(sqlite3_file* f) {
    return real_of(f)->pMethods->xSectorSize(real_of(f));
}
int f_device_characteristics(sqlite3_file* f) {
    return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}
int f_shm_map(sqlite3_file* f, int page, int size, int extend, void volatile** out) {
    return real_of(f)->pMethods->xShmMap(real_of(f), page, size, extend, out);
}
int f_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
    return real_of(f)->pMethods->xShmLock(real_of(f), offset, n, flags);
}
void f_shm_barrier(sqlite3_file* f) {
    real_of(f)->pMethods->xShmBarrier(real_of(f));
}
int f_shm_unmap(sqlite3_file* f, int delete_flag) {
    return real_of(f)->pMethods->xShmUnmap(real_of(f), delete_flag);
}
int f_fetch(sqlite3_file* f, sqlite3_int64 off, int n, void** out) {
    return real_of(f)->pMethods->xFetch(real_of(f), off, n, out);
}
int f_unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
    return real_of(f)->pMethods->xUnfetch(real_of(f), off, p);
}

// The io-methods SQLite sees: version 3 when the real file's are, otherwise version 1, without
// shared memory (version 2) and memory mapping (version 3).
constexpr sqlite3_io_methods io_methods(int version) {
    sqlite3_io_methods m = {version,
                            f_close,
                            f_read,
                            f_write,
                            f_truncate,
                            f_sync,
                            f_file_size,
                            f_lock,
                            f_unlock,
                            f_check_reserved,
                            f_file_control,
                            f_sector_size,
                            f_device_characteristics,
                            f_shm_map,
                            f_shm_lock,
                            f_shm_barrier,
                            f_shm_unmap,
                            f_fetch,
                            f_unfetch};
    if (version < 3) {
        m.xShmMap = nullptr;
        m.xShmLock = nullptr;
        m.xShmBarrier = nullptr;
        m.xShmUnmap = nullptr;
        m.xFetch = nullptr;
        m.xUnfetch = nullptr;
    }
    return m;
}
constexpr sqlite3_io_methods io_v3 = io_methods(3);
constexpr sqlite3_io_methods io_v1 = io_methods(1);

int v_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
    auto* me = reinterpret_cast<file*>(f);
    me->base.pMethods = nullptr;
    me->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(f) + header_size);
    if (active.load() == fault::read_only_open && (flags & SQLITE_OPEN_MAIN_DB) &&
        (flags & SQLITE_OPEN_READWRITE)) {
        ++failed;
        flags = (flags & ~(SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)) | SQLITE_OPEN_READONLY;
    }
    int got = 0;
    int rc = real_vfs->xOpen(real_vfs, name, me->real, flags, &got);
    if (out_flags)
        *out_flags = got;
    if (rc != SQLITE_OK || me->real->pMethods == nullptr)
        return rc;
    me->base.pMethods = me->real->pMethods->iVersion >= 3 ? &io_v3 : &io_v1;
    return rc;
}
int v_delete(sqlite3_vfs*, const char* name, int sync_dir) {
    return real_vfs->xDelete(real_vfs, name, sync_dir);
}
int v_access(sqlite3_vfs*, const char* name, int flags, int* out) {
    return real_vfs->xAccess(real_vfs, name, flags, out);
}
int v_full_pathname(sqlite3_vfs*, const char* name, int n, char* out) {
    return real_vfs->xFullPathname(real_vfs, name, n, out);
}
void* v_dl_open(sqlite3_vfs*, const char* name) {
    return real_vfs->xDlOpen(real_vfs, name);
}
void v_dl_error(sqlite3_vfs*, int n, char* out) {
    real_vfs->xDlError(real_vfs, n, out);
}
void (*v_dl_sym(sqlite3_vfs*, void* h, const char* sym))(void) {
    return real_vfs->xDlSym(real_vfs, h, sym);
}
void v_dl_close(sqlite3_vfs*, void* h) {
    real_vfs->xDlClose(real_vfs, h);
}
int v_randomness(sqlite3_vfs*, int n, char* out) {
    return real_vfs->xRandomness(real_vfs, n, out);
}
int v_sleep(sqlite3_vfs*, int us) {
    return real_vfs->xSleep(real_vfs, us);
}
int v_current_time(sqlite3_vfs*, double* out) {
    return real_vfs->xCurrentTime(real_vfs, out);
}
int v_last_error(sqlite3_vfs*, int n, char* out) {
    return real_vfs->xGetLastError ? real_vfs->xGetLastError(real_vfs, n, out) : 0;
}
int v_current_time_int64(sqlite3_vfs*, sqlite3_int64* out) {
    return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

sqlite3_vfs vfs{};

} // namespace

void install() {
    static std::once_flag once;
    std::call_once(once, [] {
        real_vfs = sqlite3_vfs_find(nullptr);
        if (!real_vfs)
            throw std::runtime_error("no default SQLite VFS");
        vfs.iVersion = 2;
        vfs.szOsFile = static_cast<int>(header_size) + real_vfs->szOsFile;
        vfs.mxPathname = real_vfs->mxPathname;
        vfs.zName = "fieldsync_fault";
        vfs.xOpen = v_open;
        vfs.xDelete = v_delete;
        vfs.xAccess = v_access;
        vfs.xFullPathname = v_full_pathname;
        vfs.xDlOpen = v_dl_open;
        vfs.xDlError = v_dl_error;
        vfs.xDlSym = v_dl_sym;
        vfs.xDlClose = v_dl_close;
        vfs.xRandomness = v_randomness;
        vfs.xSleep = v_sleep;
        vfs.xCurrentTime = v_current_time;
        vfs.xGetLastError = v_last_error;
        vfs.xCurrentTimeInt64 = v_current_time_int64;
        if (sqlite3_vfs_register(&vfs, 1) != SQLITE_OK)
            throw std::runtime_error("cannot register the fault VFS");
    });
}

void set(fault f) {
    active = f;
}

fault current() {
    return active.load();
}

std::uint64_t failures() {
    return failed.load();
}

} // namespace fieldsync::testing::fault_vfs
