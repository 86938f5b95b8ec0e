// lmcodec core: finding a stream's weights file (see model_search.h).
#include "core/model_search.h"

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "util/sha256.h"

#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#define LMC_HAVE_DLADDR 1
#endif

namespace lmc {

namespace fs = std::filesystem;

namespace {

#ifdef _WIN32
constexpr char kPathSep = ';';
#else
constexpr char kPathSep = ':';
#endif

constexpr uintmax_t kMaxWeightsBytes = uintmax_t(256) << 20;

void split_into(const std::string& s, std::vector<std::string>& out) {
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(kPathSep, start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
}

std::string hex(const uint8_t* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}

// The model id of the file at `path`, or false when it cannot be read.
bool file_model_id(const fs::path& path, std::array<uint8_t, 16>& id) {
  std::error_code ec;
  uintmax_t n = fs::file_size(path, ec);
  if (ec || n > kMaxWeightsBytes) return false;
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::vector<uint8_t> bytes(static_cast<size_t>(n));
  if (n > 0 && !f.read(reinterpret_cast<char*>(bytes.data()), std::streamsize(n))) return false;
  auto digest = sha256(bytes.data(), bytes.size());
  std::memcpy(id.data(), digest.data(), 16);
  return true;
}

bool is_weights_file(const fs::directory_entry& e) {
  std::error_code ec;
  return e.is_regular_file(ec) && e.path().extension() == ".lmw";
}

}  // namespace

std::vector<std::string> model_search_dirs(const char* search_path) {
  std::vector<std::string> dirs;
  if (search_path) {
    split_into(search_path, dirs);
  } else if (const char* env = std::getenv("LMCODEC_MODEL_PATH")) {
    split_into(env, dirs);
  }
#if defined(LMC_HAVE_DLADDR) && defined(LMC_MODEL_DIR_FROM_LIB)
  // an installed shared library: its prefix's share/lmcodec, wherever the
  // prefix was moved to
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&model_search_dirs), &info) && info.dli_fname && info.dli_fname[0]) {
    std::error_code ec;
    fs::path lib = fs::weakly_canonical(fs::path(info.dli_fname), ec);
    if (!ec) dirs.push_back((lib.parent_path() / LMC_MODEL_DIR_FROM_LIB).lexically_normal().string());
  }
#endif
#ifdef LMC_INSTALLED_MODEL_DIR
  dirs.push_back(LMC_INSTALLED_MODEL_DIR);
#endif
  return dirs;
}

std::string find_weights_file(const std::vector<std::string>& dirs, const std::array<uint8_t, 16>& id) {
  const std::string tag = "-" + hex(id.data(), 8) + ".lmw";
  std::array<uint8_t, 16> got{};
  for (const std::string& d : dirs) {
    std::error_code ec;
    std::vector<fs::path> named, others;
    for (fs::directory_iterator it(d, ec), end; !ec && it != end; it.increment(ec)) {
      if (!is_weights_file(*it)) continue;
      const std::string name = it->path().filename().string();
      bool tagged = name.size() > tag.size() && name.compare(name.size() - tag.size(), tag.size(), tag) == 0;
      (tagged ? named : others).push_back(it->path());
    }
    for (const auto* list : {&named, &others})
      for (const fs::path& p : *list)
        if (file_model_id(p, got) && got == id) return p.string();
  }
  return "";
}

}  // namespace lmc
