#include "util/profile.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>

namespace lmc {
namespace profile {
namespace {
std::atomic<bool> g_on{false};
std::mutex g_mu;
std::map<std::string, Entry>& table() {
  static std::map<std::string, Entry> t;
  return t;
}
}  // namespace

void enable(bool on) { g_on.store(on, std::memory_order_relaxed); }
bool enabled() { return g_on.load(std::memory_order_relaxed); }

void add(const std::string& name, double seconds, double macs) {
  std::lock_guard<std::mutex> lock(g_mu);
  auto& t = table();
  auto it = t.find(name);
  if (it == t.end()) {
    Entry e;
    e.name = name;
    e.order = int(t.size());
    it = t.emplace(name, e).first;
  }
  it->second.calls += 1;
  it->second.seconds += seconds;
  it->second.macs += macs;
}

std::vector<Entry> take() {
  std::lock_guard<std::mutex> lock(g_mu);
  std::vector<Entry> out;
  for (auto& kv : table()) out.push_back(kv.second);
  table().clear();
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.order < b.order; });
  return out;
}

}  // namespace profile
}  // namespace lmc
