// fieldsyncd as a child process on a loopback ephemeral port, for tests that kill it, restart it
// on the same data folder, measure its memory, or check how it refuses to start. Its stdout and
// stderr go to DIR/fieldsyncd.log (appended, one file across restarts).
//
// Thread-safety: one thread drives an instance; port()/cert() may be read from any thread.
#pragma once

#include "server_fixture.hpp"

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace fieldsync::testing {

class child_process_server {
public:
    // Starts fieldsyncd --data dir with the test collections and waits until it listens. Throws
    // std::runtime_error (with the log's tail) if it exits instead.
    explicit child_process_server(const std::string& dir, std::vector<std::string> extra_args = {},
                                  std::map<std::string, std::string> env = {});
    ~child_process_server(); // SIGTERM and wait, if still running
    child_process_server(const child_process_server&) = delete;
    child_process_server& operator=(const child_process_server&) = delete;

    void kill9();    // SIGKILL and wait
    int terminate(); // SIGTERM and wait; the exit status (-1 if killed by a signal)
    pid_t pid() const { return pid_; }
    unsigned short port() const { return port_; }
    std::string cert() const { return dir_ + "/dev-cert.pem"; }
    std::string log() const; // DIR/fieldsyncd.log
    // Enrols a tablet for `user` through POST /v1/enrol (the code made in the database).
    tablet_login enrol(const std::string& user) const;

    struct exit_info {
        int status = -1; // exit status, -1 if it did not exit by itself
        std::string log; // what it wrote
        bool listened = false;
    };
    // Runs fieldsyncd on `dir` expecting it to refuse to start: returns how it exited. If it
    // listens instead, it is stopped and `listened` is true.
    static exit_info expect_refusal(const std::string& dir,
                                    std::map<std::string, std::string> env = {});

private:
    std::string dir_;
    pid_t pid_ = -1;
    unsigned short port_ = 0;
    std::optional<int> exited_; // set when it exited during start
};

// Resident set size (VmRSS) of a process in bytes, from /proc/<pid>/status; 0 if unreadable.
std::size_t resident_bytes(pid_t pid);

} // namespace fieldsync::testing
