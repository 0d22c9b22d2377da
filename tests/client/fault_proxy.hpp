// A fault-injecting TCP proxy on 127.0.0.1 for the client tests: it forwards connections to a
// loopback port and, while `rate` > 0, cuts every connection (both directions) after a random
// number of bytes (at most 6000/rate) in one direction: mid-handshake, mid-request,
// mid-response, or right before the answer. Faults by wrapping the real link, not by mocking the
// client.
//
// Thread-safety: runs its own I/O thread; set_rate() and the counters may be used from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace fieldsync::testing {

class fault_proxy {
public:
    fault_proxy(unsigned short target_port, std::uint64_t seed, double rate);
    ~fault_proxy();
    fault_proxy(const fault_proxy&) = delete;
    fault_proxy& operator=(const fault_proxy&) = delete;

    unsigned short port() const;
    void set_rate(double rate);
    std::size_t connections() const;
    std::size_t cuts() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace fieldsync::testing
