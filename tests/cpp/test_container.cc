// Tests for the .lmc container (docs/format.md) and CRC-32.
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "check.h"
#include "core/container.h"
#include "util/crc32.h"

using namespace lmc;
using Bytes = std::vector<uint8_t>;

namespace {

Bytes bytes_of(const std::string& s) { return Bytes(s.begin(), s.end()); }

Bytes random_bytes(std::mt19937& rng, size_t n) {
  Bytes b(n);
  for (auto& x : b) x = uint8_t(rng());
  return b;
}

uint32_t crc_bitwise(const uint8_t* p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
  }
  return ~c;
}

void put32(Bytes& b, uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(uint8_t(v >> (8 * i)));
}

// Raw file builder with correct CRCs, for inputs the writer refuses to make.
struct Raw {
  Bytes out;
  Raw() { out.assign(kSignature, kSignature + kSignatureSize); }
  Raw& chunk(const std::string& type, const Bytes& data) {
    size_t start = out.size();
    out.insert(out.end(), type.begin(), type.begin() + 4);
    put32(out, uint32_t(data.size()));
    out.insert(out.end(), data.begin(), data.end());
    put32(out, crc32(out.data() + start, 8 + data.size()));
    return *this;
  }
};

struct HeadFields {
  uint8_t major = 1, minor = 0, channels = 3, depth = 8;
  uint32_t width = 16, height = 8;
  uint8_t codec = 1, reserved = 0;
  uint16_t q = 7550;
  uint32_t flags = 0, tile = 0;
  size_t extra = 0;
};

Bytes head_data(const HeadFields& f) {
  Bytes d = {f.major, f.minor, f.channels, f.depth};
  put32(d, f.width);
  put32(d, f.height);
  d.push_back(f.codec);
  d.push_back(f.reserved);
  d.push_back(uint8_t(f.q));
  d.push_back(uint8_t(f.q >> 8));
  for (int i = 0; i < 16; ++i) d.push_back(uint8_t(0xA0 + i));
  put32(d, f.flags);
  put32(d, f.tile);
  d.resize(d.size() + f.extra, 0x5A);
  return d;
}

// A minimal valid file body for HeadFields defaults: SIDE + LATN + ENDC.
Bytes raw_file(const HeadFields& f, const std::vector<std::pair<std::string, Bytes>>& mid = {{"SIDE", {1, 2}}, {"LATN", {3}}}) {
  Raw r;
  r.chunk("HEAD", head_data(f));
  for (auto& c : mid) r.chunk(c.first, c.second);
  r.chunk("ENDC", {});
  return r.out;
}

Header sample_header() {
  Header h;
  h.width = 640;
  h.height = 480;
  h.channels = 4;
  h.bit_depth = 8;
  h.codec = kCodecHyperprior;
  h.quality_x100 = 4250;
  for (int i = 0; i < 16; ++i) h.model_id[i] = uint8_t(i * 17 + 3);
  h.flags = kFlagHasAlpha;
  h.tile_height = 0;
  return h;
}

std::vector<Chunk> sample_chunks(std::mt19937& rng) {
  return {
      {kIcc, random_bytes(rng, 300)},  {kExif, bytes_of("MM\0*rest")}, {kXmp, bytes_of("<x:xmpmeta/>")},
      {chunk_type("teSt"), random_bytes(rng, 5)}, {kSideInfo, random_bytes(rng, 77)},
      {kLatents, random_bytes(rng, 1000)}, {kAlpha, random_bytes(rng, 40)}, {chunk_type("zzzz"), {}},
  };
}

bool same_header(const Header& a, const Header& b) {
  return a.width == b.width && a.height == b.height && a.channels == b.channels && a.bit_depth == b.bit_depth &&
         a.codec == b.codec && a.quality_x100 == b.quality_x100 && a.model_id == b.model_id && a.flags == b.flags &&
         a.tile_height == b.tile_height;
}

void test_crc() {
  const std::string v = "123456789";
  CHECK_EQ(crc32(reinterpret_cast<const uint8_t*>(v.data()), v.size()), 0xCBF43926u);
  CHECK_EQ(crc32(nullptr, 0), 0u);
  std::mt19937 rng(1);
  Bytes b = random_bytes(rng, 1000);
  for (size_t n : {size_t(1), size_t(7), size_t(8), size_t(9), size_t(63), size_t(1000)}) {
    CHECK_EQ(crc32(b.data(), n), crc_bitwise(b.data(), n));
    for (size_t cut : {size_t(0), n / 3, n}) CHECK_EQ(crc32(crc32(b.data(), cut), b.data() + cut, n - cut), crc32(b.data(), n));
  }
}

void test_round_trip() {
  std::mt19937 rng(2);
  Header h = sample_header();
  std::vector<Chunk> chunks = sample_chunks(rng);
  Bytes f = write_container(h, chunks);
  CHECK(sniff(f.data(), f.size()));
  Container c = read_container(f.data(), f.size());
  CHECK(same_header(c.header, h));
  CHECK_EQ(c.header.version_major, 1);
  CHECK_EQ(c.header.version_minor, 0);
  CHECK_EQ(c.chunks.size(), chunks.size());
  for (size_t i = 0; i < chunks.size() && i < c.chunks.size(); ++i) {
    CHECK(c.chunks[i].type == chunks[i].type);
    CHECK(c.chunks[i].data == chunks[i].data);
  }
  CHECK(c.find(kLatents) && c.find(kLatents)->data == chunks[5].data);
  CHECK(c.find(chunk_type("ABCD")) == nullptr);
  CHECK_EQ(c.unknown().size(), 2u);
  CHECK(same_header(read_header(f.data(), f.size()), h));
  // Reading and rewriting reproduces the file byte for byte.
  CHECK(write_container(c.header, c.chunks) == f);
  ContainerView v = read_container_view(f.data(), f.size());
  CHECK_EQ(v.chunks.size(), chunks.size());
  CHECK(v.find(kSideInfo) && v.find(kSideInfo)->size == 77 &&
        std::memcmp(v.find(kSideInfo)->data, chunks[4].data.data(), 77) == 0);
  // read_header does not look past HEAD.
  Bytes head_only(f.begin(), f.begin() + kSignatureSize + kChunkOverhead + kHeadSize);
  CHECK(same_header(read_header(head_only.data(), head_only.size()), h));
  CHECK_THROWS(read_container(head_only.data(), head_only.size()), Status::CorruptStream);

  // Minimal PCA stream: a single empty LATN.
  Header p = h;
  p.codec = kCodecPca;
  p.flags = 0;
  p.channels = 1;
  p.quality_x100 = 100;
  Bytes m = write_container(p, {{kLatents, {}}});
  CHECK_EQ(m.size(), 84u);
  CHECK(same_header(read_container(m.data(), m.size()).header, p));
}

void test_strips() {
  Header h = sample_header();
  h.flags = 0;
  h.height = 10;
  h.tile_height = 3;
  CHECK_EQ(h.strip_count(), 4u);
  std::vector<Chunk> ok;
  for (int i = 0; i < 4; ++i) {
    ok.push_back({kSideInfo, Bytes(i + 1, uint8_t(i))});
    ok.push_back({kLatents, Bytes(i + 2, uint8_t(i))});
  }
  Bytes f = write_container(h, ok);
  Container c = read_container(f.data(), f.size());
  CHECK_EQ(c.find_all(kLatents).size(), 4u);
  CHECK(c.find_all(kLatents)[3]->data == Bytes(5, 3));
  // Wrong strip counts / orders are refused by the writer and the reader.
  std::vector<Chunk> three(ok.begin(), ok.begin() + 6);
  CHECK_THROWS(write_container(h, three), Status::InvalidArgument);
  std::vector<Chunk> swapped = ok;
  std::swap(swapped[0], swapped[1]);
  CHECK_THROWS(write_container(h, swapped), Status::InvalidArgument);
  std::vector<Chunk> five = ok;
  five.push_back({kSideInfo, {}});
  five.push_back({kLatents, {}});
  CHECK_THROWS(write_container(h, five), Status::InvalidArgument);
  h.tile_height = 11;
  CHECK_THROWS(write_container(h, ok), Status::InvalidArgument);
  h.tile_height = 10;
  CHECK_EQ(h.strip_count(), 1u);

  HeadFields hf;
  hf.height = 10;
  hf.tile = 5;
  Bytes good = raw_file(hf, {{"SIDE", {}}, {"LATN", {}}, {"SIDE", {}}, {"LATN", {}}});
  CHECK_EQ(read_container(good.data(), good.size()).chunks.size(), 4u);
  Bytes one = raw_file(hf, {{"SIDE", {}}, {"LATN", {}}});
  CHECK_THROWS(read_container(one.data(), one.size()), Status::CorruptStream);
  Bytes mixed = raw_file(hf, {{"SIDE", {}}, {"LATN", {}}, {"LATN", {}}});
  CHECK_THROWS(read_container(mixed.data(), mixed.size()), Status::CorruptStream);
  Bytes double_side = raw_file(hf, {{"SIDE", {}}, {"SIDE", {}}, {"LATN", {}}, {"LATN", {}}});
  CHECK_THROWS(read_container(double_side.data(), double_side.size()), Status::CorruptStream);
  hf.tile = 11;
  Bytes tall = raw_file(hf);
  CHECK_THROWS(read_container(tall.data(), tall.size()), Status::CorruptStream);
}

void test_truncations() {
  std::mt19937 rng(3);
  Bytes f = write_container(sample_header(), sample_chunks(rng));
  const size_t head_end = kSignatureSize + kChunkOverhead + kHeadSize;
  int wrong = 0;
  for (size_t n = 0; n < f.size(); ++n) {
    try {
      read_container(f.data(), n);
      ++wrong;
    } catch (const Error& e) {
      if (e.code() != Status::CorruptStream) ++wrong;
    }
    if (n < head_end) CHECK_THROWS(read_header(f.data(), n), Status::CorruptStream);
  }
  CHECK_EQ(wrong, 0);
  // Trailing data.
  Bytes t = f;
  t.push_back(0);
  CHECK_THROWS(read_container(t.data(), t.size()), Status::CorruptStream);
  // An extra valid-looking chunk after ENDC.
  Raw r;
  r.out = f;
  r.chunk("teSt", {1});
  CHECK_THROWS(read_container(r.out.data(), r.out.size()), Status::CorruptStream);
}

void test_bit_flips() {
  std::mt19937 rng(4);
  Bytes f = write_container(sample_header(), sample_chunks(rng));
  const size_t head_end = kSignatureSize + kChunkOverhead + kHeadSize;
  int wrong = 0, wrong_head = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes g = f;
      g[i] ^= uint8_t(1u << bit);
      try {
        read_container(g.data(), g.size());
        ++wrong;
      } catch (const Error& e) {
        if (e.code() != Status::CorruptStream) ++wrong;
      }
      if (i < head_end) {
        try {
          read_header(g.data(), g.size());
          ++wrong_head;
        } catch (const Error& e) {
          if (e.code() != Status::CorruptStream) ++wrong_head;
        }
      }
    }
  }
  CHECK_EQ(wrong, 0);
  CHECK_EQ(wrong_head, 0);
  // Random multi-byte damage: any lmc::Error, never a crash (run under ASan).
  for (int trial = 0; trial < 3000; ++trial) {
    Bytes g = f;
    int n = 1 + int(rng() % 8);
    for (int k = 0; k < n; ++k) g[rng() % g.size()] = uint8_t(rng());
    if (trial % 3 == 0) g.resize(rng() % (g.size() + 1));
    try {
      read_container(g.data(), g.size());
    } catch (const Error&) {
    }
    try {
      read_header(g.data(), g.size());
    } catch (const Error&) {
    }
  }
  // Pure garbage after a valid signature.
  for (int trial = 0; trial < 2000; ++trial) {
    Bytes g(kSignature, kSignature + kSignatureSize);
    Bytes tail = random_bytes(rng, rng() % 200);
    g.insert(g.end(), tail.begin(), tail.end());
    try {
      read_container(g.data(), g.size());
      CHECK(false);
    } catch (const Error&) {
    }
  }
}

void test_limits() {
  // 4e9 x 4e9 with a valid CRC.
  HeadFields hf;
  hf.width = 4000000000u;
  hf.height = 4000000000u;
  Bytes huge = raw_file(hf);
  CHECK_THROWS(read_header(huge.data(), huge.size()), Status::LimitExceeded);
  CHECK_THROWS(read_container(huge.data(), huge.size()), Status::LimitExceeded);
  Limits open;
  open.max_dimension = 0xFFFFFFFFu;
  open.max_pixels = ~uint64_t(0);
  CHECK(read_header(huge.data(), huge.size(), open).pixels() == 16000000000000000000ull);
  hf.width = 65536;
  hf.height = 1;
  Bytes wide = raw_file(hf);
  CHECK_THROWS(read_header(wide.data(), wide.size()), Status::LimitExceeded);
  hf.width = 20000;
  hf.height = 20000;  // 4e8 > 2^28
  Bytes big = raw_file(hf);
  CHECK_THROWS(read_header(big.data(), big.size()), Status::LimitExceeded);
  Limits small;
  small.max_pixels = 100;
  HeadFields ok;
  Bytes f = raw_file(ok);  // 16x8 = 128 pixels
  CHECK_THROWS(read_container(f.data(), f.size(), small), Status::LimitExceeded);
  small.max_pixels = 128;
  CHECK_EQ(read_container(f.data(), f.size(), small).header.pixels(), 128u);

  // Chunk length 0xFFFFFFFF (CRC irrelevant: the length is checked first).
  Bytes g = raw_file(ok);
  size_t side = kSignatureSize + kChunkOverhead + kHeadSize;
  CHECK(std::memcmp(g.data() + side, "SIDE", 4) == 0);
  for (uint32_t len : {0xFFFFFFFFu, 0x80000000u, 0x7FFFFFF8u, 1000u}) {
    Bytes h = g;
    for (int i = 0; i < 4; ++i) h[side + 4 + i] = uint8_t(len >> (8 * i));
    CHECK_THROWS(read_container(h.data(), h.size()), Status::CorruptStream);
  }
  // Same for the HEAD length.
  Bytes h = g;
  for (int i = 0; i < 4; ++i) h[kSignatureSize + 4 + i] = 0xFF;
  CHECK_THROWS(read_header(h.data(), h.size()), Status::CorruptStream);

  Limits chunk_limit;
  chunk_limit.max_chunk_bytes = 1;
  CHECK_THROWS(read_container(g.data(), g.size(), chunk_limit), Status::LimitExceeded);  // SIDE has 2 bytes
  chunk_limit.max_chunk_bytes = 40;
  CHECK_EQ(read_container(g.data(), g.size(), chunk_limit).chunks.size(), 2u);
  Limits count_limit;
  count_limit.max_chunks = 3;
  CHECK_THROWS(read_container(g.data(), g.size(), count_limit), Status::LimitExceeded);
  count_limit.max_chunks = 4;
  CHECK_EQ(read_container(g.data(), g.size(), count_limit).chunks.size(), 2u);

  // The writer honours the same limits.
  Header wh = sample_header();
  std::mt19937 rng(5);
  CHECK_THROWS(write_container(wh, sample_chunks(rng), chunk_limit), Status::LimitExceeded);
  CHECK_THROWS(write_container(wh, sample_chunks(rng), count_limit), Status::LimitExceeded);
  wh.width = 70000;
  CHECK_THROWS(write_container(wh, sample_chunks(rng)), Status::LimitExceeded);
}

void test_unknown_chunks() {
  HeadFields hf;
  Bytes opt = raw_file(hf, {{"abcd", {9, 9}}, {"SIDE", {1}}, {"qqQQ", {}}, {"LATN", {2}}, {"zZzZ", {7}}});
  Container c = read_container(opt.data(), opt.size());
  CHECK_EQ(c.chunks.size(), 5u);
  CHECK_EQ(c.unknown().size(), 3u);
  CHECK(c.unknown()[0]->type == chunk_type("abcd") && c.unknown()[0]->data == Bytes({9, 9}));
  CHECK(c.find(kSideInfo)->data == Bytes{1});

  Bytes crit = raw_file(hf, {{"SIDE", {1}}, {"TILE", {0}}, {"LATN", {2}}});
  CHECK_THROWS(read_container(crit.data(), crit.size()), Status::Unsupported);
  CHECK(same_header(read_header(crit.data(), crit.size()), read_header(opt.data(), opt.size())));
  // The writer passes unknown optional chunks through, refuses unknown critical ones.
  Header h = c.header;
  CHECK(write_container(h, c.chunks) == opt);
  std::vector<Chunk> bad = c.chunks;
  bad.push_back({chunk_type("TILE"), {}});
  CHECK_THROWS(write_container(h, bad), Status::InvalidArgument);
  bad = c.chunks;
  bad.push_back({chunk_type("ab1d"), {}});
  CHECK_THROWS(write_container(h, bad), Status::InvalidArgument);
  bad = c.chunks;
  bad.push_back({kHead, {}});
  CHECK_THROWS(write_container(h, bad), Status::InvalidArgument);
  bad = c.chunks;
  bad.push_back({kEnd, {}});
  CHECK_THROWS(write_container(h, bad), Status::InvalidArgument);

  // Invalid type bytes with a valid CRC.
  Bytes inv = raw_file(hf, {{"ab d", {}}, {"SIDE", {1}}, {"LATN", {2}}});
  CHECK_THROWS(read_container(inv.data(), inv.size()), Status::CorruptStream);
}

void test_signature_and_versions() {
  HeadFields hf;
  Bytes f = raw_file(hf);
  CHECK(sniff(f.data(), f.size()));
  CHECK(!sniff(f.data(), 7));
  CHECK(!sniff(nullptr, 0));
  Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 0};
  CHECK(!sniff(png.data(), png.size()));
  CHECK_THROWS(read_container(png.data(), png.size()), Status::CorruptStream);
  CHECK_THROWS(read_header(png.data(), png.size()), Status::CorruptStream);
  CHECK_THROWS(read_container(nullptr, 0), Status::CorruptStream);
  CHECK_THROWS(read_header(f.data(), 0), Status::CorruptStream);
  // CRLF -> LF conversion.
  Bytes lf = f;
  lf.erase(lf.begin() + 4);
  CHECK(!sniff(lf.data(), lf.size()));
  CHECK_THROWS(read_container(lf.data(), lf.size()), Status::CorruptStream);

  HeadFields v2 = hf;
  v2.major = 2;
  Bytes g = raw_file(v2);
  CHECK_THROWS(read_header(g.data(), g.size()), Status::Unsupported);
  CHECK_THROWS(read_container(g.data(), g.size()), Status::Unsupported);
  v2.extra = 100;  // a newer major may change the HEAD size
  g = raw_file(v2);
  CHECK_THROWS(read_container(g.data(), g.size()), Status::Unsupported);
  HeadFields v0 = hf;
  v0.major = 0;
  g = raw_file(v0);
  CHECK_THROWS(read_container(g.data(), g.size()), Status::CorruptStream);

  // Newer minor: longer HEAD, reserved byte and flags ignored.
  HeadFields v11 = hf;
  v11.minor = 1;
  v11.extra = 24;
  v11.reserved = 7;
  v11.flags = 0x80000000u;
  g = raw_file(v11);
  Header h11 = read_container(g.data(), g.size()).header;
  CHECK_EQ(h11.version_minor, 1);
  CHECK_EQ(h11.width, 16u);
  v11.extra = 2000;  // over kMaxHeadSize
  g = raw_file(v11);
  CHECK_THROWS(read_header(g.data(), g.size()), Status::CorruptStream);
  // Same extras in a 1.0 stream are refused.
  HeadFields bad = hf;
  bad.extra = 4;
  g = raw_file(bad);
  CHECK_THROWS(read_header(g.data(), g.size()), Status::CorruptStream);
  bad = hf;
  bad.reserved = 1;
  g = raw_file(bad);
  CHECK_THROWS(read_header(g.data(), g.size()), Status::CorruptStream);
  bad = hf;
  bad.flags = 2;
  g = raw_file(bad);
  CHECK_THROWS(read_header(g.data(), g.size()), Status::CorruptStream);
}

void test_header_fields() {
  struct Case {
    void (*edit)(HeadFields&);
    Status status;
  };
  const Case cases[] = {
      {[](HeadFields& f) { f.width = 0; }, Status::CorruptStream},
      {[](HeadFields& f) { f.height = 0; }, Status::CorruptStream},
      {[](HeadFields& f) { f.channels = 2; }, Status::Unsupported},
      {[](HeadFields& f) { f.channels = 0; }, Status::Unsupported},
      {[](HeadFields& f) { f.depth = 16; }, Status::Unsupported},
      {[](HeadFields& f) { f.codec = 0; }, Status::Unsupported},
      {[](HeadFields& f) { f.codec = 3; }, Status::Unsupported},
      {[](HeadFields& f) { f.q = 99; }, Status::CorruptStream},
      {[](HeadFields& f) { f.q = 10001; }, Status::CorruptStream},
      {[](HeadFields& f) { f.flags = kFlagHasAlpha; }, Status::CorruptStream},  // 3 channels
      {[](HeadFields& f) { f.tile = 9; }, Status::CorruptStream},
  };
  for (const Case& c : cases) {
    HeadFields f;
    c.edit(f);
    Bytes g = raw_file(f);
    CHECK_THROWS(read_header(g.data(), g.size()), c.status);
  }
  // Layout rules around the header.
  HeadFields f;
  Bytes g = raw_file(f, {{"LATN", {}}});  // hyperprior needs SIDE
  CHECK_THROWS(read_container(g.data(), g.size()), Status::CorruptStream);
  f.codec = 2;
  g = raw_file(f, {{"LATN", {}}});
  CHECK_EQ(read_container(g.data(), g.size()).chunks.size(), 1u);
  g = raw_file(f, {});
  CHECK_THROWS(read_container(g.data(), g.size()), Status::CorruptStream);
  g = raw_file(f, {{"LATN", {}}, {"ALPH", {}}});  // ALPH without flag
  CHECK_THROWS(read_container(g.data(), g.size()), Status::CorruptStream);
  f.channels = 4;
  f.flags = kFlagHasAlpha;
  g = raw_file(f, {{"LATN", {}}});  // flag without ALPH
  CHECK_THROWS(read_container(g.data(), g.size()), Status::CorruptStream);
  g = raw_file(f, {{"ALPH", {}}, {"LATN", {}}});
  CHECK_EQ(read_container(g.data(), g.size()).chunks.size(), 2u);
  g = raw_file(f, {{"ALPH", {}}, {"LATN", {}}, {"ALPH", {}}});
  CHECK_THROWS(read_container(g.data(), g.size()), Status::CorruptStream);
  for (const char* meta : {"iccp", "exif", "xmpd"}) {
    g = raw_file(f, {{meta, {1}}, {"ALPH", {}}, {"LATN", {}}, {meta, {2}}});
    CHECK_THROWS(read_container(g.data(), g.size()), Status::CorruptStream);
  }
  g = raw_file(f, {{"ALPH", {}}, {"HEAD", head_data(f)}, {"LATN", {}}});
  CHECK_THROWS(read_container(g.data(), g.size()), Status::CorruptStream);
  // First chunk not HEAD.
  Raw r;
  r.chunk("LATN", {}).chunk("HEAD", head_data(f)).chunk("ENDC", {});
  CHECK_THROWS(read_header(r.out.data(), r.out.size()), Status::CorruptStream);
  // Non-empty ENDC; missing ENDC.
  Raw e;
  e.chunk("HEAD", head_data(f)).chunk("ALPH", {}).chunk("LATN", {}).chunk("ENDC", {0});
  CHECK_THROWS(read_container(e.out.data(), e.out.size()), Status::CorruptStream);
  Raw m;
  m.chunk("HEAD", head_data(f)).chunk("ALPH", {}).chunk("LATN", {});
  CHECK_THROWS(read_container(m.out.data(), m.out.size()), Status::CorruptStream);
  CHECK_EQ(read_header(m.out.data(), m.out.size()).codec, 2);

  // Writer: invalid fields are InvalidArgument.
  const std::vector<void (*)(Header&)> edits = {
      [](Header& h) { h.width = 0; },          [](Header& h) { h.channels = 2; },
      [](Header& h) { h.bit_depth = 16; },     [](Header& h) { h.codec = 9; },
      [](Header& h) { h.quality_x100 = 0; },   [](Header& h) { h.quality_x100 = 10001; },
      [](Header& h) { h.flags = 4 | kFlagHasAlpha; }, [](Header& h) { h.channels = 3; },  // alpha flag on RGB
      [](Header& h) { h.tile_height = 481; },
  };
  std::mt19937 rng(6);
  for (auto edit : edits) {
    Header h = sample_header();
    edit(h);
    CHECK_THROWS(write_container(h, sample_chunks(rng)), Status::InvalidArgument);
  }
  Header h = sample_header();
  h.version_major = 9;  // ignored by the writer
  Bytes w = write_container(h, sample_chunks(rng));
  CHECK_EQ(read_header(w.data(), w.size()).version_major, 1);
  std::vector<Chunk> no_alpha = sample_chunks(rng);
  no_alpha.pop_back();
  no_alpha.erase(no_alpha.begin() + 6);
  CHECK_THROWS(write_container(h, no_alpha), Status::InvalidArgument);
  h.flags = 0;
  CHECK(write_container(h, no_alpha).size() > 0);
}

void test_model_id() {
  Header h = sample_header();
  check_model_id(h, h.model_id);
  std::array<uint8_t, 16> other = h.model_id;
  other[15] ^= 1;
  CHECK_THROWS(check_model_id(h, other), Status::ModelMismatch);
  try {
    check_model_id(h, other);
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find(model_id_hex(h.model_id)) != std::string::npos);
    CHECK(std::string(e.what()).find(model_id_hex(other)) != std::string::npos);
  }
  CHECK_EQ(model_id_hex(h.model_id).size(), 32u);
}

// QMAP (spatial quality map): a known critical chunk of hyperprior streams,
// at most once, before the first SIDE/LATN; has_chunk_type finds it by a
// walk over the chunk lengths that never reads past the input.
void test_quality_map_chunk() {
  HeadFields f;
  const Bytes q = {6, 0, 1, 0, 1, 0, 0};
  const Bytes ok = raw_file(f, {{"QMAP", q}, {"SIDE", {1, 2}}, {"LATN", {3}}});
  const ContainerView v = read_container_view(ok.data(), ok.size());
  CHECK(v.find(kQualityMap) && v.find(kQualityMap)->size == q.size());
  CHECK(has_chunk_type(ok.data(), ok.size(), kQualityMap));
  CHECK(!has_chunk_type(ok.data(), ok.size(), kAlpha));
  const Bytes plain = raw_file(f);
  CHECK(!has_chunk_type(plain.data(), plain.size(), kQualityMap));
  const Bytes after = raw_file(f, {{"SIDE", {1, 2}}, {"QMAP", q}, {"LATN", {3}}});
  CHECK_THROWS(read_container_view(after.data(), after.size()), Status::CorruptStream);
  const Bytes twice = raw_file(f, {{"QMAP", q}, {"QMAP", q}, {"SIDE", {1, 2}}, {"LATN", {3}}});
  CHECK_THROWS(read_container_view(twice.data(), twice.size()), Status::CorruptStream);
  HeadFields pca;
  pca.codec = 2;
  const Bytes in_pca = raw_file(pca, {{"QMAP", q}, {"LATN", {3}}});
  CHECK_THROWS(read_container_view(in_pca.data(), in_pca.size()), Status::CorruptStream);
  // the walk stops at a length that runs past the end, on any prefix
  for (size_t n = 0; n < ok.size(); ++n) {
    const bool found = has_chunk_type(ok.data(), n, kQualityMap);
    CHECK(found == (n >= kSignatureSize + 12 + 40 + 8));
  }
  Bytes huge = plain;
  huge[kSignatureSize + 4 + 3] = 0xFF;  // HEAD length ~4 GB
  CHECK(!has_chunk_type(huge.data(), huge.size(), kQualityMap));
}

}  // namespace

int main() {
  test_crc();
  test_round_trip();
  test_strips();
  test_truncations();
  test_bit_flips();
  test_limits();
  test_unknown_chunks();
  test_signature_and_versions();
  test_header_fields();
  test_model_id();
  test_quality_map_chunk();
  return check_summary();
}
