// The libFuzzer entry point of one target (FIELDSYNC_FUZZ_ENTRY names it; see CMakeLists.txt).
#include "fuzz_targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return fieldsync::fuzz::FIELDSYNC_FUZZ_ENTRY(data, size);
}
