// The web page for township heads and district admins: the files of server/web/, embedded in
// the binary at build time (cmake/embed.cmake) and served as GET / (index.html) and
// GET /app/<name>. Only embedded names are served, by exact match, so no request reaches the
// file system. Every answer carries the page's security headers (a strict Content-Security-
// Policy: nothing from another host, no inline script or style), an ETag for If-None-Match, and
// text files gzip-compressed when the browser accepts it.
//
// Thread-safety: read-only after the first call (the table is built once, thread-safely).
#pragma once

#include "schema/embedded.hpp"
#include "server/api.hpp"

#include <span>
#include <string_view>

namespace fieldsync::web_files {
// The files of server/web/, named relative to it ("index.html", "app.js", …).
std::span<const embedded_file> files();
} // namespace fieldsync::web_files

namespace fieldsync::server {

// True for "/" and "/app/…": the paths the page is served under.
bool is_static_path(std::string_view path);

// The answer to GET `path`: 200 with the file, 304 when `if_none_match` names its ETag, 404 for
// anything not embedded (unknown names, unknown extensions, "..", hidden files).
http_response static_file(std::string_view path, std::string_view if_none_match,
                          std::string_view accept_encoding);

// The headers every answer of the page carries (also on its errors).
void add_page_headers(http_response& res);

} // namespace fieldsync::server
