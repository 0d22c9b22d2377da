#include "server/tls.hpp"

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <memory>

namespace fieldsync::server {

namespace fs = std::filesystem;

namespace {

struct file_closer {
    void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};
struct pkey_free {
    void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
struct pkey_ctx_free {
    void operator()(EVP_PKEY_CTX* p) const noexcept { EVP_PKEY_CTX_free(p); }
};
struct x509_free {
    void operator()(X509* p) const noexcept { X509_free(p); }
};
struct ext_free {
    void operator()(X509_EXTENSION* p) const noexcept { X509_EXTENSION_free(p); }
};
using file_ptr = std::unique_ptr<std::FILE, file_closer>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;

template <class T>
result<T> bad(std::string* why, std::string text) {
    if (why)
        *why = std::move(text);
    return errc::unsupported;
}

bool add_extension(X509* cert, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    std::unique_ptr<X509_EXTENSION, ext_free> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
    return ext && X509_add_ext(cert, ext.get(), -1) == 1;
}

result<void> generate(const std::string& cert_path, const std::string& key_path, std::string* why) {
    std::unique_ptr<EVP_PKEY_CTX, pkey_ctx_free> kctx(EVP_PKEY_CTX_new_id(EVP_PKEY_EC, nullptr));
    EVP_PKEY* raw = nullptr;
    if (!kctx || EVP_PKEY_keygen_init(kctx.get()) != 1 ||
        EVP_PKEY_CTX_set_ec_paramgen_curve_nid(kctx.get(), NID_X9_62_prime256v1) != 1 ||
        EVP_PKEY_keygen(kctx.get(), &raw) != 1)
        return bad<void>(why, "could not generate an ECDSA P-256 key");
    pkey_ptr key(raw);

    std::unique_ptr<X509, x509_free> cert(X509_new());
    X509_set_version(cert.get(), 2);
    unsigned char serial[16];
    if (RAND_bytes(serial, sizeof serial) != 1)
        return bad<void>(why, "RAND_bytes failed");
    serial[0] &= 0x7f; // positive
    BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 825L * 24 * 3600);
    X509_set_pubkey(cert.get(), key.get());
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("fieldsync development"), -1,
                               -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    if (!add_extension(cert.get(), NID_subject_alt_name,
                       "DNS:localhost,IP:127.0.0.1,IP:0:0:0:0:0:0:0:1") ||
        !add_extension(cert.get(), NID_basic_constraints, "critical,CA:FALSE") ||
        !add_extension(cert.get(), NID_key_usage, "critical,digitalSignature") ||
        !add_extension(cert.get(), NID_ext_key_usage, "serverAuth"))
        return bad<void>(why, "could not add certificate extensions");
    if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0)
        return bad<void>(why, "could not sign the development certificate");

    // Write to temporary names and rename, so a crash never leaves half a key behind.
    std::string key_tmp = key_path + ".tmp", cert_tmp = cert_path + ".tmp";
    {
        mode_t old = umask(077);
        file_ptr f(std::fopen(key_tmp.c_str(), "wb"));
        umask(old);
        if (!f ||
            PEM_write_PrivateKey(f.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
            return bad<void>(why, "cannot write " + key_tmp);
    }
    {
        file_ptr f(std::fopen(cert_tmp.c_str(), "wb"));
        if (!f || PEM_write_X509(f.get(), cert.get()) != 1)
            return bad<void>(why, "cannot write " + cert_tmp);
    }
    std::error_code ec;
    fs::rename(key_tmp, key_path, ec);
    if (!ec)
        fs::rename(cert_tmp, cert_path, ec);
    if (ec)
        return bad<void>(why, "cannot store the development certificate: " + ec.message());
    return {};
}

} // namespace

result<tls_files> ensure_dev_certificate(const std::string& dir, std::string* why) {
    tls_files out;
    out.cert = (fs::path(dir) / "dev-cert.pem").string();
    out.key = (fs::path(dir) / "dev-key.pem").string();
    if (fs::exists(out.cert) && fs::exists(out.key))
        return out;
    if (auto r = generate(out.cert, out.key, why); !r)
        return r.error();
    out.generated = true;
    return out;
}

result<std::string> certificate_fingerprint(const std::string& cert_file, std::string* why) {
    file_ptr f(std::fopen(cert_file.c_str(), "rb"));
    if (!f)
        return bad<std::string>(why, "cannot read " + cert_file);
    std::unique_ptr<X509, x509_free> cert(PEM_read_X509(f.get(), nullptr, nullptr, nullptr));
    if (!cert)
        return bad<std::string>(why, cert_file + " holds no PEM certificate");
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (X509_digest(cert.get(), EVP_sha256(), md, &len) != 1)
        return bad<std::string>(why, "cannot digest " + cert_file);
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
        if (i)
            out += ':';
        out += digits[md[i] >> 4];
        out += digits[md[i] & 15];
    }
    return out;
}

} // namespace fieldsync::server
