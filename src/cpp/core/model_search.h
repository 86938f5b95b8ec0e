// lmcodec core: finding the weights file a stream names, among installed
// ones (lmc_model_open_for_stream).
//
// Directories are searched in order: those of the caller's search path (or,
// without one, of $LMCODEC_MODEL_PATH), then the installed weights directory
// (the shared library's ../share/lmcodec, found with dladdr, then the
// absolute directory of the install it was built for). In each directory a
// file named <anything>-<first 8 id bytes in hex>.lmw is tried first, then
// every other *.lmw is identified by the SHA-256 of its bytes.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace lmc {

// The directories to search. search_path: entries separated by ':' (';' on
// Windows), empty entries skipped; nullptr = $LMCODEC_MODEL_PATH. The
// installed weights directories follow.
std::vector<std::string> model_search_dirs(const char* search_path);

// Path of the first *.lmw file in `dirs` whose model id (first 16 bytes of
// the SHA-256 of the file) is `id`; "" if none. Unreadable directories and
// files are skipped. Files over 256 MiB are not considered.
std::string find_weights_file(const std::vector<std::string>& dirs, const std::array<uint8_t, 16>& id);

}  // namespace lmc
