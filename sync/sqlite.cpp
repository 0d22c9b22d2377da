#include "sync/sqlite.hpp"

#include <sqlite3.h>

namespace fieldsync::sql {

namespace {

[[noreturn]] void fail(sqlite3* db, int rc, std::string_view what) {
    std::string msg(what);
    msg += ": ";
    msg += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    throw error(rc & 0xff, msg);
}

void check(sqlite3* db, int rc, std::string_view what) {
    if (rc != SQLITE_OK)
        fail(db, rc, what);
}

} // namespace

statement::statement(sqlite3* db, std::string_view text) : db_(db) {
    int rc = sqlite3_prepare_v3(db, text.data(), static_cast<int>(text.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
    if (rc != SQLITE_OK)
        fail(db, rc, "prepare " + std::string(text.substr(0, 60)));
}

statement::statement(statement&& o) noexcept : stmt_(o.stmt_), db_(o.db_) {
    o.stmt_ = nullptr;
}

statement& statement::operator=(statement&& o) noexcept {
    if (this != &o) {
        sqlite3_finalize(stmt_);
        stmt_ = o.stmt_;
        db_ = o.db_;
        o.stmt_ = nullptr;
    }
    return *this;
}

statement::~statement() {
    sqlite3_finalize(stmt_);
}

void statement::bind(int i, std::int64_t v) {
    check(db_, sqlite3_bind_int64(stmt_, i, v), "bind");
}
void statement::bind(int i, double v) {
    check(db_, sqlite3_bind_double(stmt_, i, v), "bind");
}
void statement::bind(int i, std::string_view t) {
    check(db_, sqlite3_bind_text64(stmt_, i, t.data(), t.size(), SQLITE_TRANSIENT, SQLITE_UTF8),
          "bind");
}
void statement::bind(int i, borrowed_text t) {
    check(db_,
          sqlite3_bind_text64(stmt_, i, t.text.data(), t.text.size(), SQLITE_STATIC, SQLITE_UTF8),
          "bind");
}
void statement::bind(int i, std::span<const std::uint8_t> b) {
    check(db_, sqlite3_bind_blob64(stmt_, i, b.data(), b.size(), SQLITE_TRANSIENT), "bind");
}
void statement::bind(int i, std::nullptr_t) {
    check(db_, sqlite3_bind_null(stmt_, i), "bind");
}

bool statement::step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW)
        return true;
    if (rc == SQLITE_DONE)
        return false;
    fail(db_, rc, "step");
}

void statement::reset() noexcept {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
}

bool statement::is_null(int c) const {
    return sqlite3_column_type(stmt_, c) == SQLITE_NULL;
}
std::int64_t statement::int64(int c) const {
    return sqlite3_column_int64(stmt_, c);
}
double statement::real(int c) const {
    return sqlite3_column_double(stmt_, c);
}
std::string_view statement::text(int c) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, c));
    return p ? std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, c)))
             : std::string_view{};
}
std::span<const std::uint8_t> statement::blob(int c) const {
    auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, c));
    return {p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, c))};
}

bool configure_process() {
    static const bool applied = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK;
    return applied;
}

connection::connection(const std::string& path, open_mode mode) : path_(path) {
    configure_process();
    int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
    switch (mode) {
    case open_mode::read_write_create:
        flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
        break;
    case open_mode::read_write:
        flags |= SQLITE_OPEN_READWRITE;
        break;
    case open_mode::read_only:
        flags |= SQLITE_OPEN_READONLY;
        break;
    }
    int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
        std::string msg = "open " + path + ": " + (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
        sqlite3_close_v2(db_);
        db_ = nullptr;
        throw error(rc & 0xff, msg);
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, 10000);
    try {
        // journal_mode is persistent in the file; readers only need to see it is WAL.
        if (mode != open_mode::read_only && path != ":memory:")
            exec("PRAGMA journal_mode=WAL");
        exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;");
    } catch (...) {
        sqlite3_close_v2(db_);
        db_ = nullptr;
        throw;
    }
}

connection::connection(connection&& o) noexcept
    : db_(o.db_), path_(std::move(o.path_)), cache_(std::move(o.cache_)) {
    o.db_ = nullptr;
}

connection& connection::operator=(connection&& o) noexcept {
    if (this != &o) {
        cache_.clear();
        sqlite3_close_v2(db_);
        db_ = o.db_;
        path_ = std::move(o.path_);
        cache_ = std::move(o.cache_);
        o.db_ = nullptr;
    }
    return *this;
}

connection::~connection() {
    cache_.clear(); // finalize statements before closing
    sqlite3_close_v2(db_);
}

void connection::exec(std::string_view text) {
    std::string s(text);
    char* err = nullptr;
    int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
        std::string msg = "exec: " + std::string(err ? err : sqlite3_errstr(rc));
        sqlite3_free(err);
        throw error(rc & 0xff, msg);
    }
}

statement_ref connection::cached(std::string_view text) {
    auto it = cache_.find(text);
    if (it == cache_.end())
        it = cache_.emplace(std::string(text), std::make_unique<statement>(db_, text)).first;
    return statement_ref(*it->second);
}

std::int64_t connection::last_insert_rowid() const {
    return sqlite3_last_insert_rowid(db_);
}
int connection::changes() const {
    return sqlite3_changes(db_);
}

std::string connection::integrity_check() {
    statement s(db_, "PRAGMA integrity_check");
    std::string out;
    if (s.step())
        out = std::string(s.text(0));
    return out;
}

transaction::transaction(connection& c, tx_mode mode) : c_(&c) {
    c.exec(mode == tx_mode::immediate ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED");
}

transaction::~transaction() {
    if (!done_)
        sqlite3_exec(c_->handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void transaction::commit() {
    c_->exec("COMMIT");
    done_ = true;
}

savepoint::savepoint(connection& c) : c_(&c) {
    c.exec("SAVEPOINT sp");
}

savepoint::~savepoint() {
    if (!done_) {
        sqlite3_exec(c_->handle(), "ROLLBACK TO sp", nullptr, nullptr, nullptr);
        sqlite3_exec(c_->handle(), "RELEASE sp", nullptr, nullptr, nullptr);
    }
}

void savepoint::release() {
    c_->exec("RELEASE sp");
    done_ = true;
}

} // namespace fieldsync::sql
