// QR codes as SVG for the web page (the enrolment code a tablet scans), made with libqrencode.
//
// Thread-safety: a pure function.
#pragma once

#include <string>
#include <string_view>

namespace fieldsync::server {

// An SVG image (black modules on white, a 4-module quiet zone, scalable) of `text` encoded with
// error correction level M; "" if the text cannot be encoded.
std::string qr_svg(std::string_view text);

} // namespace fieldsync::server
