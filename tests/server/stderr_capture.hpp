// Captures what this process writes to stderr (file descriptor 2: fieldsyncd's log lines from
// any thread) into a file while the object lives, so that a test can read the server's log.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace fieldsync::testing {

class stderr_capture {
public:
    explicit stderr_capture(std::string path) : path_(std::move(path)) {
        std::cerr.flush();
        std::fflush(stderr);
        saved_ = ::dup(2);
        int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
        if (saved_ < 0 || fd < 0)
            throw std::runtime_error("cannot capture stderr");
        ::dup2(fd, 2);
        ::close(fd);
    }
    ~stderr_capture() { restore(); }
    stderr_capture(const stderr_capture&) = delete;
    stderr_capture& operator=(const stderr_capture&) = delete;

    // Stops capturing (idempotent); the file stays.
    void restore() {
        if (saved_ < 0)
            return;
        std::cerr.flush();
        std::fflush(stderr);
        ::dup2(saved_, 2);
        ::close(saved_);
        saved_ = -1;
    }
    // What was captured so far.
    std::string text() const {
        std::cerr.flush();
        std::ifstream in(path_, std::ios::binary);
        std::ostringstream s;
        s << in.rdbuf();
        return s.str();
    }

private:
    std::string path_;
    int saved_ = -1;
};

} // namespace fieldsync::testing
