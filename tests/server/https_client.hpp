// A small blocking HTTPS/1.1 client for the server tests (Beast over real TLS, loopback only),
// pinned to the server's certificate, and helpers that sync a replica through it.
#pragma once

#include "sync/replica.hpp"

#include <boost/json/value.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fieldsync::testing {

struct http_reply {
    unsigned status = 0;
    std::string body;
    std::string content_type;
    boost::json::value json;                                  // null when the body is not JSON
    std::vector<std::pair<std::string, std::string>> headers; // as received
    std::string error_code() const;                           // error.code of an error body, or ""
    std::string header(std::string_view name) const;          // first one, case-insensitive; or ""
};

class https_client {
public:
    // Connects to 127.0.0.1:port and verifies the server against `cert_file`. `source` binds the
    // client's end to another loopback address (e.g. "127.0.0.2": a second client address).
    https_client(unsigned short port, const std::string& cert_file, const std::string& source = {});
    ~https_client();
    https_client(const https_client&) = delete;
    https_client& operator=(const https_client&) = delete;

    http_reply get(const std::string& target, const std::string& token = {});
    http_reply post(const std::string& target, const std::string& body,
                    const std::string& token = {},
                    const std::string& content_type = "application/json");
    http_reply post(const std::string& target, const char* body, const std::string& token = {},
                    const std::string& content_type = "application/json") {
        return post(target, std::string(body), token, content_type);
    }
    http_reply post(const std::string& target, const boost::json::value& body,
                    const std::string& token = {});

    // Sends bytes as they are (for malformed and pipelined requests).
    void send_raw(const std::string& bytes);
    // Reads one response; throws boost::system::system_error when the server closed instead.
    http_reply read_reply();
    // Drops the TCP connection without TLS shutdown (a tablet losing signal).
    void cut();
    // True if the server closed the connection (waits for it).
    bool wait_closed();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// Pushes the replica's whole outbox and pulls until complete, over `c`.
void sync_over(https_client& c, replica& r, const std::string& token, std::size_t batch = 50);

} // namespace fieldsync::testing
