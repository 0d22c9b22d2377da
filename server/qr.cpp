#include "server/qr.hpp"

#include <qrencode.h>

#include <memory>

namespace fieldsync::server {

std::string qr_svg(std::string_view text) {
    std::string input(text); // NUL-terminated for libqrencode
    std::unique_ptr<QRcode, void (*)(QRcode*)> qr(
        QRcode_encodeString(input.c_str(), 0, QR_ECLEVEL_M, QR_MODE_8, 1), QRcode_free);
    if (!qr)
        return {};
    const int n = qr->width, quiet = 4, size = n + 2 * quiet;
    std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " +
                    std::to_string(size) + " " + std::to_string(size) +
                    "\" shape-rendering=\"crispEdges\"><rect width=\"" + std::to_string(size) +
                    "\" height=\"" + std::to_string(size) +
                    "\" fill=\"#fff\"/><path fill=\"#000\" d=\"";
    // One horizontal run of dark modules per path segment keeps the image small.
    for (int y = 0; y < n; ++y) {
        for (int x = 0; x < n;) {
            if (!(qr->data[y * n + x] & 1)) {
                ++x;
                continue;
            }
            int run = 1;
            while (x + run < n && (qr->data[y * n + x + run] & 1))
                ++run;
            s += "M" + std::to_string(x + quiet) + " " + std::to_string(y + quiet) + "h" +
                 std::to_string(run) + "v1h-" + std::to_string(run) + "z";
            x += run;
        }
    }
    s += "\"/></svg>";
    return s;
}

} // namespace fieldsync::server
