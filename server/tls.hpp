// TLS material for fieldsyncd: a self-signed development certificate generated once in the data
// folder when no certificate is configured, and the SHA-256 fingerprint that clients pin.
//
// Thread-safety: free functions; call them before the server starts serving.
#pragma once

#include "schema/errc.hpp"

#include <string>

namespace fieldsync::server {

struct tls_files {
    std::string cert; // PEM certificate (chain)
    std::string key;  // PEM private key
    bool generated = false;
};

// DIR/dev-cert.pem and DIR/dev-key.pem: an ECDSA P-256 self-signed certificate for localhost,
// 127.0.0.1 and ::1, valid for 825 days. Made when missing and reused afterwards (so pinned
// fingerprints stay valid across restarts). The key file is created 0600.
result<tls_files> ensure_dev_certificate(const std::string& dir, std::string* why);

// "AB:CD:…" (32 bytes) of the DER form of the first certificate in the PEM file.
result<std::string> certificate_fingerprint(const std::string& cert_file, std::string* why);

} // namespace fieldsync::server
