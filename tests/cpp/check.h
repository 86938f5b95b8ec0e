// Minimal test harness for the C++ unit tests (no dependencies).
//   CHECK(cond); CHECK_EQ(a, b); CHECK_THROWS(expr, status);
//   int main() { ...; return check_summary(); }
#pragma once
#include <cstdio>
#include <cstdlib>

#include "util/error.h"

inline int& check_failures() {
  static int n = 0;
  return n;
}

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++check_failures();                                                    \
    }                                                                        \
  } while (0)

#define CHECK_EQ(a, b)                                                       \
  do {                                                                       \
    if (!((a) == (b))) {                                                     \
      std::fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s\n", __FILE__, __LINE__, #a, #b); \
      ++check_failures();                                                    \
    }                                                                        \
  } while (0)

#define CHECK_THROWS(expr, status)                                           \
  do {                                                                       \
    bool thrown_ = false;                                                    \
    try {                                                                    \
      expr;                                                                  \
    } catch (const ::lmc::Error& e_) {                                       \
      thrown_ = (e_.code() == (status));                                     \
      if (!thrown_) std::fprintf(stderr, "%s:%d: wrong status %d: %s\n", __FILE__, __LINE__, (int)e_.code(), e_.what()); \
    }                                                                        \
    if (!thrown_) {                                                          \
      std::fprintf(stderr, "%s:%d: CHECK_THROWS failed: %s\n", __FILE__, __LINE__, #expr); \
      ++check_failures();                                                    \
    }                                                                        \
  } while (0)

inline int check_summary() {
  if (check_failures()) {
    std::fprintf(stderr, "%d check(s) failed\n", check_failures());
    return 1;
  }
  std::printf("all checks passed\n");
  return 0;
}
