// The text of every member of a ZIP archive (an XLSX workbook), concatenated, so that a test can
// search a spreadsheet for strings. Reads the central directory; stored and deflated members.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace fieldsync::testing {

inline std::string zip_text(std::string_view zip) {
    auto u16 = [&](std::size_t at) -> std::uint32_t {
        if (at + 2 > zip.size())
            throw std::runtime_error("zip: truncated");
        return static_cast<unsigned char>(zip[at]) | static_cast<unsigned char>(zip[at + 1]) << 8;
    };
    auto u32 = [&](std::size_t at) -> std::uint32_t { return u16(at) | u16(at + 2) << 16; };
    // End of central directory: the last "PK\5\6".
    std::size_t eocd = zip.rfind(std::string_view("PK\x05\x06", 4));
    if (eocd == std::string_view::npos)
        throw std::runtime_error("zip: no end of central directory");
    std::uint32_t entries = u16(eocd + 10);
    std::size_t at = u32(eocd + 16);
    std::string out;
    for (std::uint32_t i = 0; i < entries; ++i) {
        if (u32(at) != 0x02014b50)
            throw std::runtime_error("zip: bad central directory entry");
        std::uint32_t method = u16(at + 10);
        std::uint32_t csize = u32(at + 20), usize = u32(at + 24);
        std::uint32_t name_len = u16(at + 28), extra_len = u16(at + 30), comment_len = u16(at + 32);
        std::uint32_t local = u32(at + 42);
        at += 46 + name_len + extra_len + comment_len;
        if (u32(local) != 0x04034b50)
            throw std::runtime_error("zip: bad local header");
        std::size_t data = local + 30 + u16(local + 26) + u16(local + 28);
        if (data + csize > zip.size())
            throw std::runtime_error("zip: truncated member");
        if (method == 0) {
            out.append(zip.substr(data, csize));
        } else if (method == 8) {
            std::string buf(usize, '\0');
            z_stream z{};
            if (inflateInit2(&z, -MAX_WBITS) != Z_OK)
                throw std::runtime_error("zip: inflateInit2");
            z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(zip.data() + data));
            z.avail_in = csize;
            z.next_out = reinterpret_cast<Bytef*>(buf.data());
            z.avail_out = usize;
            int rc = inflate(&z, Z_FINISH);
            inflateEnd(&z);
            if (rc != Z_STREAM_END)
                throw std::runtime_error("zip: inflate failed");
            out += buf;
        } else {
            throw std::runtime_error("zip: unsupported method");
        }
        out += '\n';
    }
    return out;
}

} // namespace fieldsync::testing
