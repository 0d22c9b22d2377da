// Thin RAII layer over the SQLite C API: a connection that caches its prepared statements, a
// statement guard that resets on scope exit, and transactions/savepoints that roll back in
// their destructors (never throwing there).
//
// SQLite failures are unexpected here and throw sql::error; the writer and the reader pool catch
// them at their boundary and turn them into errc::storage_failure.
//
// Thread-safety: a connection and its statements belong to one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>

struct sqlite3;
struct sqlite3_stmt;

namespace fieldsync::sql {

struct error : std::runtime_error {
    error(int rc, const std::string& what) : std::runtime_error(what), code(rc) {}
    int code; // SQLite primary result code (SQLITE_FULL, SQLITE_READONLY, …)
};

enum class open_mode { read_write_create, read_write, read_only };

// Text bound without a copy (SQLite's SQLITE_STATIC): the caller keeps it alive until the
// statement is reset (a statement_ref's end). For large values on the writer's path.
struct borrowed_text {
    std::string_view text;
};

class statement {
public:
    statement(sqlite3* db, std::string_view sql);
    statement(statement&&) noexcept;
    statement& operator=(statement&&) noexcept;
    ~statement();

    void bind(int index, std::int64_t v);
    void bind(int index, int v) { bind(index, static_cast<std::int64_t>(v)); }
    void bind(int index, double v);
    void bind(int index, std::string_view text);
    void bind(int index, borrowed_text text);
    void bind(int index, const char* text) { bind(index, std::string_view(text)); }
    void bind(int index, std::span<const std::uint8_t> blob);
    void bind(int index, std::nullptr_t);
    template <class T>
    void bind(int index, const std::optional<T>& v) {
        if (v)
            bind(index, *v);
        else
            bind(index, nullptr);
    }
    // Binds every argument in order, starting at parameter 1.
    template <class... A>
    void bind_all(const A&... args) {
        int i = 0;
        (bind(++i, args), ...);
    }

    // Advances; true while a row is available. Throws sql::error on failure.
    bool step();
    // Steps to completion, for statements that return no rows.
    void run() {
        while (step()) {
        }
    }
    void reset() noexcept;

    bool is_null(int col) const;
    std::int64_t int64(int col) const;
    double real(int col) const;
    std::string_view text(int col) const;
    std::span<const std::uint8_t> blob(int col) const;

private:
    sqlite3_stmt* stmt_ = nullptr;
    sqlite3* db_ = nullptr;
};

// Borrowed cached statement; resets and clears bindings on scope exit so the next user starts
// clean.
class statement_ref {
public:
    explicit statement_ref(statement& s) : s_(&s) {}
    statement_ref(const statement_ref&) = delete;
    statement_ref& operator=(const statement_ref&) = delete;
    ~statement_ref() { s_->reset(); }
    statement* operator->() const { return s_; }
    statement& operator*() const { return *s_; }

private:
    statement* s_;
};

// SQLite's process-wide settings, applied before SQLite is first used: no memory statistics
// (with them every allocation inside SQLite takes a process-wide mutex for counters nothing here
// reads: 3 % of the writer's instructions). Called by every connection and by anything else that
// opens SQLite itself (the startup check); idempotent. False if SQLite had already been
// initialised by someone else, so the settings could not be applied (only slower).
bool configure_process();

class connection {
public:
    // Opens (and with read_write_create creates) the database, and sets WAL, synchronous=FULL,
    // foreign keys and a busy timeout. ":memory:" gives a private in-memory database.
    connection(const std::string& path, open_mode mode);
    connection(connection&&) noexcept;
    connection& operator=(connection&&) noexcept;
    ~connection();

    // Runs one or more statements that return no rows.
    void exec(std::string_view sql);
    // A prepared statement cached on this connection, keyed by its text.
    statement_ref cached(std::string_view sql);
    std::int64_t last_insert_rowid() const;
    int changes() const;
    sqlite3* handle() const { return db_; }
    const std::string& path() const { return path_; }
    // Runs PRAGMA integrity_check; returns "ok" or the first problem found.
    std::string integrity_check();

private:
    sqlite3* db_ = nullptr;
    std::string path_;
    // Looked up by the caller's string_view, without building a std::string per statement.
    struct text_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    std::unordered_map<std::string, std::unique_ptr<statement>, text_hash, std::equal_to<>> cache_;
};

enum class tx_mode { deferred, immediate };

// BEGIN on construction, ROLLBACK in the destructor unless commit() succeeded.
class transaction {
public:
    explicit transaction(connection& c, tx_mode mode = tx_mode::immediate);
    transaction(const transaction&) = delete;
    transaction& operator=(const transaction&) = delete;
    ~transaction();
    void commit();

private:
    connection* c_;
    bool done_ = false;
};

// A nested SAVEPOINT: one push inside a group commit can fail without undoing the others.
class savepoint {
public:
    explicit savepoint(connection& c);
    savepoint(const savepoint&) = delete;
    savepoint& operator=(const savepoint&) = delete;
    ~savepoint();
    void release();

private:
    connection* c_;
    bool done_ = false;
};

} // namespace fieldsync::sql
