// fieldsyncd as a library: an HTTPS (TLS 1.2/1.3, HTTP/1.1 keep-alive) server over one district
// database. Network threads run an io_context with a strand per connection and never touch
// SQLite; pushes go to the single writer (group commit), pulls and reads to the reader pool.
// Tests run it in process on an ephemeral loopback port; the fieldsyncd executable wraps it.
//
// Thread-safety: construct and run() on one thread; stop() may be called from any thread (and
// is what SIGTERM/SIGINT trigger when run() handles signals).
#pragma once

#include "server/config.hpp"

#include <memory>
#include <string>

namespace fieldsync::server {

class server {
public:
    // Opens (creating and migrating) DIR/fieldsync.db, loads or generates the certificate, starts
    // the writer and the readers, and binds the listener. Throws std::runtime_error with a
    // sentence on failure (port taken, unreadable certificate, database from a newer build).
    explicit server(config cfg);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    unsigned short port() const;
    std::string url() const;                // https://ADDR:PORT
    const std::string& fingerprint() const; // SHA-256 of the certificate, AB:CD:…
    const std::string& certificate_file() const;

    // Serves until stop() (or SIGTERM/SIGINT when `handle_signals`), then shuts down gracefully:
    // stop accepting, finish in-flight requests (up to shutdown_grace_ms), let the writer commit
    // what it has queued, close. Returns when everything is closed.
    void run(bool handle_signals = false);
    // Starts serving on background threads; stop() then waits for the shutdown.
    void start();
    void stop();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace fieldsync::server
