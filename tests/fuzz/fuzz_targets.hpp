// Fuzz targets over fieldsync's hostile-input surfaces. Each is a plain function of the input
// bytes so that libFuzzer (fuzz_main.cpp, clang) and the corpus replay test (replay_test.cpp,
// any compiler) run the same code. A target returns 0; a broken invariant prints what broke and
// aborts, which libFuzzer reports as a crash and the replay test as a failed test.
//
// Thread-safety: one input at a time per process (libFuzzer's model). Each target builds its
// environment (an in-memory district, or a file database with an in-process API) on first use
// and keeps it for the process's life.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace fieldsync::fuzz {

// JSON text → decode_push → engine::push (in a transaction rolled back afterwards) as a field
// worker of a small seeded district.
int fuzz_push(const std::uint8_t* data, std::size_t size);
// JSON text → decode_pull → engine::pull for a township worker, a village worker and the district.
int fuzz_pull(const std::uint8_t* data, std::size_t size);
// Cursor text → engine::decode_cursor (HMAC, base64url) and, when it decodes, a pull with it.
int fuzz_cursor(const std::uint8_t* data, std::size_t size);
// Raw bytes → Beast's request parser with fieldsyncd's limits → server::api::handle with an
// in-process engine, writer and reader pool; waits for every answer and checks it.
int fuzz_http(const std::uint8_t* data, std::size_t size);

// Prints "fuzz invariant broken: <what>" and aborts when `ok` is false.
void check(bool ok, std::string_view what);

} // namespace fieldsync::fuzz
