#include "server/static_files.hpp"

#include "server/auth.hpp"

#include <zlib.h>

#include <map>
#include <string>

namespace fieldsync::server {

namespace {

struct asset {
    std::string_view data;
    std::string content_type;
    std::string etag;    // quoted, of the uncompressed bytes
    std::string gzipped; // empty when not worth it
};

std::string_view content_type_of(std::string_view name) {
    auto dot = name.rfind('.');
    if (dot == std::string_view::npos)
        return {};
    auto ext = name.substr(dot + 1);
    if (ext == "html")
        return "text/html; charset=utf-8";
    if (ext == "js")
        return "text/javascript; charset=utf-8";
    if (ext == "css")
        return "text/css; charset=utf-8";
    if (ext == "svg")
        return "image/svg+xml";
    if (ext == "png")
        return "image/png";
    if (ext == "json")
        return "application/json; charset=utf-8";
    if (ext == "woff2")
        return "font/woff2";
    return {};
}

// gzip of `data` (zlib's deflate with a gzip wrapper), or "" if it fails or does not pay.
std::string gzip(std::string_view data) {
    z_stream z{};
    if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return {};
    std::string out(deflateBound(&z, static_cast<uLong>(data.size())) + 32, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    int rc = deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    if (rc != Z_STREAM_END || out.size() + 64 >= data.size())
        return {};
    return out;
}

// A name the page may be asked for: no parent steps, no hidden files, no odd characters.
bool safe_name(std::string_view name) {
    if (name.empty() || name.size() > 200)
        return false;
    std::size_t start = 0;
    while (start <= name.size()) {
        auto slash = name.find('/', start);
        auto seg = name.substr(start, slash == std::string_view::npos ? name.npos : slash - start);
        if (seg.empty() || seg.front() == '.')
            return false;
        for (char ch : seg)
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_'))
                return false;
        if (slash == std::string_view::npos)
            break;
        start = slash + 1;
    }
    return true;
}

const std::map<std::string, asset, std::less<>>& assets() {
    static const auto table = [] {
        std::map<std::string, asset, std::less<>> t;
        for (const auto& f : web_files::files()) {
            auto type = content_type_of(f.name);
            if (type.empty() || !safe_name(f.name) || f.name.find("node_modules") != f.name.npos)
                continue;
            asset a;
            a.data = f.data;
            a.content_type = std::string(type);
            a.etag = "\"" + auth::sha256_hex(f.data).substr(0, 32) + "\"";
            if (type.starts_with("text/") || type.starts_with("application/json") ||
                type == "image/svg+xml")
                if (f.data.size() > 512)
                    a.gzipped = gzip(f.data);
            t.emplace(std::string(f.name), std::move(a));
        }
        return t;
    }();
    return table;
}

bool accepts_gzip(std::string_view accept_encoding) {
    // "gzip", "gzip, deflate, br", "br;q=1.0, gzip;q=0.8"; "gzip;q=0" refuses it.
    auto pos = accept_encoding.find("gzip");
    if (pos == std::string_view::npos)
        return false;
    auto rest = accept_encoding.substr(pos + 4);
    auto comma = rest.find(',');
    auto params = rest.substr(0, comma);
    auto q = params.find("q=");
    if (q == std::string_view::npos)
        return true;
    auto v = params.substr(q + 2);
    return !(v.starts_with("0") && v.find_first_not_of("0. ") == std::string_view::npos);
}

bool etag_matches(std::string_view if_none_match, std::string_view etag) {
    if (if_none_match.empty())
        return false;
    if (if_none_match.find('*') != std::string_view::npos)
        return true;
    // A list of (possibly weak) ETags; ours with or without the gzip suffix.
    std::string_view bare = etag.substr(1, etag.size() - 2);
    return if_none_match.find(bare) != std::string_view::npos;
}

} // namespace

bool is_static_path(std::string_view path) {
    return path == "/" || path.starts_with("/app/");
}

void add_page_headers(http_response& res) {
    res.headers.emplace_back("Content-Security-Policy",
                             "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                             "script-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                             "form-action 'self'");
    res.headers.emplace_back("X-Content-Type-Options", "nosniff");
    res.headers.emplace_back("Referrer-Policy", "no-referrer");
    res.headers.emplace_back("X-Frame-Options", "DENY");
    res.headers.emplace_back("Cross-Origin-Opener-Policy", "same-origin");
}

http_response static_file(std::string_view path, std::string_view if_none_match,
                          std::string_view accept_encoding) {
    std::string_view name = path == "/" ? std::string_view("index.html") : path.substr(5);
    const auto& table = assets();
    auto it = safe_name(name) ? table.find(name) : table.end();
    if (it == table.end()) {
        auto res = error_response(404, "not_found", "no such file");
        add_page_headers(res);
        return res;
    }
    const asset& a = it->second;
    bool gz = !a.gzipped.empty() && accepts_gzip(accept_encoding);
    // The compressed answer is a different representation: its own ETag.
    std::string etag = gz ? a.etag.substr(0, a.etag.size() - 1) + "-gz\"" : a.etag;
    http_response res;
    add_page_headers(res);
    res.content_type = a.content_type;
    res.headers.emplace_back("Cache-Control", "no-cache");
    res.headers.emplace_back("ETag", etag);
    if (!a.gzipped.empty())
        res.headers.emplace_back("Vary", "Accept-Encoding");
    if (etag_matches(if_none_match, a.etag)) {
        res.status = 304;
        return res;
    }
    if (gz) {
        res.headers.emplace_back("Content-Encoding", "gzip");
        res.body = a.gzipped;
    } else {
        res.body = std::string(a.data);
    }
    return res;
}

} // namespace fieldsync::server
