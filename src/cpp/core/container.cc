// .lmc container reader and writer. Layout: docs/format.md; API: container.h.
#include "core/container.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>

#include "util/crc32.h"
#include "util/error.h"

namespace lmc {

const uint8_t kSignature[kSignatureSize] = {0x89, 'L', 'M', 'C', '\r', '\n', 0x1A, '\n'};

namespace {

uint16_t rd16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
uint32_t rd32(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}
void put16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v);
  p[1] = uint8_t(v >> 8);
}
void put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}

std::string num(uint64_t v) { return std::to_string(v); }

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", v);
  return buf;
}

std::string version_str(unsigned major, unsigned minor) { return num(major) + "." + num(minor); }

Status bad(bool writing, Status reading_status) { return writing ? Status::InvalidArgument : reading_status; }

std::string quoted(const ChunkType& t) { return "'" + chunk_type_str(t) + "'"; }

// One chunk of the input, fully checked (type bytes, length, limit, CRC).
struct RawChunk {
  ChunkType type{};
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t offset = 0;
};

RawChunk next_chunk(const uint8_t* data, size_t size, size_t& pos, const Limits& limits) {
  const size_t remaining = size - pos;
  if (remaining < 8)
    fail(Status::CorruptStream, "truncated: chunk at offset " + num(pos) + " needs an 8-byte type and length, only " +
                                    num(remaining) + " byte(s) left");
  RawChunk c;
  c.offset = pos;
  std::memcpy(c.type.data(), data + pos, 4);
  const uint32_t len = rd32(data + pos + 4);
  if (!chunk_type_valid(c.type))
    fail(Status::CorruptStream, "invalid chunk type " + hex32(rd32(data + pos)) + " at offset " + num(pos) +
                                    " (type bytes must be ASCII letters): the file is damaged");
  // Length against the remaining input first: a length that cannot fit is
  // truncation or damage, whatever the limits.
  if (uint64_t(len) + 4 > uint64_t(remaining - 8))
    fail(Status::CorruptStream, "truncated: chunk " + quoted(c.type) + " at offset " + num(pos) + " claims " +
                                    num(len) + " data bytes + 4 CRC bytes, only " + num(remaining - 8) + " left");
  if (len > limits.max_chunk_bytes)
    fail(Status::LimitExceeded, "chunk " + quoted(c.type) + " at offset " + num(pos) + " has " + num(len) +
                                    " bytes, over the limit max_chunk_bytes=" + num(limits.max_chunk_bytes));
  const uint32_t computed = crc32(data + pos, size_t(8) + len);
  const uint32_t stored = rd32(data + pos + 8 + len);
  if (computed != stored)
    fail(Status::CorruptStream, "CRC mismatch in chunk " + quoted(c.type) + " at offset " + num(pos) + " (stored " +
                                    hex32(stored) + ", computed " + hex32(computed) + "): the file is damaged");
  c.data = data + pos + 8;
  c.size = len;
  pos += kChunkOverhead + len;
  return c;
}

void check_signature(const uint8_t* data, size_t size) {
  if (size >= kSignatureSize && std::memcmp(data, kSignature, kSignatureSize) == 0) return;
  if (size < kSignatureSize && (size == 0 || std::memcmp(data, kSignature, size) == 0))
    fail(Status::CorruptStream, "truncated: " + num(size) + " byte(s), shorter than the 8-byte .lmc signature");
  if (size >= 4 && std::memcmp(data + 1, "LMC", 3) == 0)
    fail(Status::CorruptStream,
         "damaged .lmc signature (a text-mode or 7-bit transfer may have altered the bytes)");
  fail(Status::CorruptStream, "not an .lmc file (bad signature)");
}

Header parse_head(const RawChunk& c, const Limits& limits) {
  if (c.type != kHead) fail(Status::CorruptStream, "the first chunk must be HEAD, found " + quoted(c.type));
  const uint8_t* d = c.data;
  if (c.size < 2) fail(Status::CorruptStream, "HEAD chunk too short (" + num(c.size) + " bytes)");
  Header h;
  h.version_major = d[0];
  h.version_minor = d[1];
  if (h.version_major == 0) fail(Status::CorruptStream, "invalid format version 0." + num(h.version_minor));
  if (h.version_major > kFormatVersionMajor)
    fail(Status::Unsupported, "format version " + version_str(h.version_major, h.version_minor) +
                                  " is newer than this reader supports (" +
                                  version_str(kFormatVersionMajor, kFormatVersionMinor) + "); upgrade lmcodec");
  const bool newer_minor = h.version_minor > kFormatVersionMinor;
  if (newer_minor ? (c.size < kHeadSize || c.size > kMaxHeadSize) : c.size != kHeadSize)
    fail(Status::CorruptStream, "HEAD chunk has " + num(c.size) + " bytes, expected " + num(kHeadSize));
  h.channels = d[2];
  h.bit_depth = d[3];
  h.width = rd32(d + 4);
  h.height = rd32(d + 8);
  h.codec = d[12];
  if (d[13] != 0 && !newer_minor) fail(Status::CorruptStream, "HEAD reserved byte is not zero");
  h.quality_x100 = rd16(d + 14);
  std::memcpy(h.model_id.data(), d + 16, 16);
  h.flags = rd32(d + 32);
  h.tile_height = rd32(d + 36);
  validate_header(h, limits, false);
  return h;
}

// Order and count rules of docs/format.md section 3, fed one chunk at a time
// (the reader while parsing, the writer before writing).
class LayoutChecker {
 public:
  LayoutChecker(const Header& h, bool writing) : h_(h), writing_(writing), strips_(h.strip_count()) {}

  void add(const ChunkType& t, size_t offset) {
    const std::string where = writing_ ? "chunk #" + num(index_) : "chunk at offset " + num(offset);
    ++index_;
    if (t == kHead || t == kEnd) {
      if (writing_) fail(Status::InvalidArgument, "HEAD and ENDC are added by the writer; do not pass them as chunks");
      fail(Status::CorruptStream, "duplicate " + quoted(t) + " " + where);
    }
    if (t == kSideInfo) {
      if (side_pending_) error(where + ": two SIDE chunks without a LATN between them");
      if (latents_ >= strips_) error(where + ": SIDE after the last strip's LATN");
      if (latents_ > 0 && side_ == 0) error(where + ": SIDE for strip " + num(latents_) + " but strip 0 has none");
      ++side_;
      side_pending_ = true;
    } else if (t == kLatents || t == kLatentsCtx) {  // LATC: a context model's latents, in LATN's place
      if (t == kLatentsCtx && h_.codec != kCodecHyperprior)
        error(where + ": LATC chunk in a stream of codec " + num(h_.codec));
      if (latents_ >= strips_)
        error(where + ": more LATN chunks than strips (" + num(strips_) + ")");
      if (side_ > 0 && !side_pending_) error(where + ": strip " + num(latents_) + " has no SIDE chunk");
      ++latents_;
      side_pending_ = false;
    } else if (t == kResidual) {
      once(residual_, t, where);
    } else if (t == kAlpha) {
      if (!(h_.flags & kFlagHasAlpha)) error(where + ": ALPH chunk but the HAS_ALPHA flag is not set");
      once(alpha_, t, where);
    } else if (t == kIcc) {
      once(icc_, t, where);
    } else if (t == kExif) {
      once(exif_, t, where);
    } else if (t == kXmp) {
      once(xmp_, t, where);
    } else if (t == kQualityMap) {
      if (h_.codec != kCodecHyperprior) error(where + ": QMAP chunk in a stream of codec " + num(h_.codec));
      if (side_ > 0 || latents_ > 0) error(where + ": QMAP after the first SIDE/LATN");
      once(qmap_, t, where);
    } else if (chunk_type_critical(t)) {
      if (writing_)
        fail(Status::InvalidArgument, where + ": unknown critical chunk type " + quoted(t) +
                                          " (readers would refuse the file)");
      fail(Status::Unsupported, "unknown critical chunk " + quoted(t) + " at offset " + num(offset) +
                                    " (written by a newer lmcodec?); cannot decode");
    }
    // Unknown optional chunk: allowed anywhere, any number of times.
  }

  void finish() {
    if (residual_) {  // the RESD chunk codes the planes; no latents beside it
      if (side_ || latents_) error("RESD chunk beside SIDE/LATN chunks");
      if (qmap_) error("QMAP chunk in a RESD stream (quality maps are for the lossy codec)");
      if ((h_.flags & kFlagHasAlpha) && alpha_ == 0) error("HAS_ALPHA flag set but no ALPH chunk");
      return;
    }
    if (side_pending_) error("SIDE chunk without a following LATN");
    if (latents_ != strips_)
      error("expected " + num(strips_) + " LATN chunk(s) (one per strip), found " + num(latents_));
    if (h_.codec == kCodecHyperprior && side_ == 0) error("hyperprior stream without SIDE chunks");
    if ((h_.flags & kFlagHasAlpha) && alpha_ == 0) error("HAS_ALPHA flag set but no ALPH chunk");
  }

 private:
  [[noreturn]] void error(const std::string& msg) const {
    fail(bad(writing_, Status::CorruptStream), (writing_ ? "write_container: " : "") + msg);
  }
  void once(int& count, const ChunkType& t, const std::string& where) {
    if (count++ > 0) error(where + ": duplicate " + quoted(t) + " chunk");
  }

  const Header& h_;
  bool writing_;
  uint64_t strips_;
  uint64_t index_ = 0;
  uint64_t side_ = 0, latents_ = 0;
  bool side_pending_ = false;
  int alpha_ = 0, icc_ = 0, exif_ = 0, xmp_ = 0, qmap_ = 0, residual_ = 0;
};

template <typename C>
const C* find_in(const std::vector<C>& v, const ChunkType& t) {
  for (const C& c : v)
    if (c.type == t) return &c;
  return nullptr;
}
template <typename C>
std::vector<const C*> find_all_in(const std::vector<C>& v, const ChunkType& t) {
  std::vector<const C*> out;
  for (const C& c : v)
    if (c.type == t) out.push_back(&c);
  return out;
}
template <typename C>
std::vector<const C*> unknown_in(const std::vector<C>& v) {
  std::vector<const C*> out;
  for (const C& c : v)
    if (!chunk_type_known(c.type)) out.push_back(&c);
  return out;
}

}  // namespace

bool chunk_type_valid(const ChunkType& t) noexcept {
  for (char ch : t)
    if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z'))) return false;
  return true;
}

bool chunk_type_known(const ChunkType& t) noexcept {
  for (const ChunkType& k :
       {kHead, kSideInfo, kLatents, kLatentsCtx, kAlpha, kIcc, kExif, kXmp, kQualityMap, kResidual, kEnd})
    if (t == k) return true;
  return false;
}

std::string chunk_type_str(const ChunkType& t) {
  std::string s;
  for (char ch : t) {
    unsigned char u = static_cast<unsigned char>(ch);
    if (u >= 0x20 && u < 0x7F) {
      s += ch;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", u);
      s += buf;
    }
  }
  return s;
}

uint32_t Header::strip_count() const {
  if (tile_height == 0) return 1;
  return static_cast<uint32_t>((uint64_t(height) + tile_height - 1) / tile_height);
}

const Chunk* Container::find(const ChunkType& t) const { return find_in(chunks, t); }
std::vector<const Chunk*> Container::find_all(const ChunkType& t) const { return find_all_in(chunks, t); }
std::vector<const Chunk*> Container::unknown() const { return unknown_in(chunks); }
const ChunkView* ContainerView::find(const ChunkType& t) const { return find_in(chunks, t); }
std::vector<const ChunkView*> ContainerView::find_all(const ChunkType& t) const { return find_all_in(chunks, t); }
std::vector<const ChunkView*> ContainerView::unknown() const { return unknown_in(chunks); }

void validate_header(const Header& h, const Limits& limits, bool writing) {
  const std::string pre = writing ? "write_container: " : "";
  if (h.width == 0 || h.height == 0)
    fail(bad(writing, Status::CorruptStream),
         pre + "image size " + num(h.width) + "x" + num(h.height) + " is empty");
  if (h.width > limits.max_dimension || h.height > limits.max_dimension)
    fail(Status::LimitExceeded, pre + "image size " + num(h.width) + "x" + num(h.height) +
                                    " is over the limit max_dimension=" + num(limits.max_dimension));
  if (h.pixels() > limits.max_pixels)
    fail(Status::LimitExceeded, pre + "image size " + num(h.width) + "x" + num(h.height) + " = " + num(h.pixels()) +
                                    " pixels is over the limit max_pixels=" + num(limits.max_pixels));
  if (h.channels != 1 && h.channels != 3 && h.channels != 4)
    fail(bad(writing, Status::Unsupported),
         pre + "unsupported channel count " + num(h.channels) + " (1 gray, 3 RGB, 4 RGBA)");
  if (h.bit_depth != 8)
    fail(bad(writing, Status::Unsupported), pre + "unsupported bit depth " + num(h.bit_depth) + " (only 8)");
  if (h.codec != kCodecHyperprior && h.codec != kCodecPca)
    fail(bad(writing, Status::Unsupported),
         pre + "unknown codec id " + num(h.codec) + " (1 hyperprior, 2 PCA)");
  if (h.quality_x100 < 100 || h.quality_x100 > 10000)
    fail(bad(writing, Status::CorruptStream),
         pre + "quality*100 = " + num(h.quality_x100) + " is outside 100..10000");
  const bool ignore_reserved = !writing && h.version_major == kFormatVersionMajor &&
                               h.version_minor > kFormatVersionMinor;
  if ((h.flags & ~uint32_t(kKnownFlags)) && !ignore_reserved)
    fail(bad(writing, Status::CorruptStream), pre + "reserved header flag bits set (" + hex32(h.flags) + ")");
  if ((h.flags & kFlagHasAlpha) && h.channels != 4)
    fail(bad(writing, Status::CorruptStream), pre + "HAS_ALPHA flag set on an image with " + num(h.channels) +
                                                  " channel(s) (needs 4)");
  if (h.tile_height > h.height)
    fail(bad(writing, Status::CorruptStream),
         pre + "tile_height " + num(h.tile_height) + " is larger than the height " + num(h.height));
}

std::vector<uint8_t> write_container(const Header& header, const std::vector<Chunk>& chunks, const Limits& limits) {
  validate_header(header, limits, true);
  if (uint64_t(chunks.size()) + 2 > limits.max_chunks)
    fail(Status::LimitExceeded, "write_container: " + num(chunks.size() + 2) +
                                    " chunks is over the limit max_chunks=" + num(limits.max_chunks));
  LayoutChecker layout(header, true);
  uint64_t total = kSignatureSize + kChunkOverhead + kHeadSize + kChunkOverhead;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const Chunk& c = chunks[i];
    if (!chunk_type_valid(c.type))
      fail(Status::InvalidArgument, "write_container: chunk #" + num(i) + " type " + quoted(c.type) +
                                        " must be four ASCII letters");
    if (c.data.size() > std::numeric_limits<uint32_t>::max() || c.data.size() > limits.max_chunk_bytes)
      fail(Status::LimitExceeded, "write_container: chunk #" + num(i) + " " + quoted(c.type) + " has " +
                                      num(c.data.size()) + " bytes, over the limit max_chunk_bytes=" +
                                      num(std::min<uint64_t>(limits.max_chunk_bytes, 0xFFFFFFFFu)));
    layout.add(c.type, 0);
    total += kChunkOverhead + c.data.size();
  }
  layout.finish();
  if (total > std::numeric_limits<size_t>::max())
    fail(Status::LimitExceeded, "write_container: output of " + num(total) + " bytes does not fit in memory");

  std::vector<uint8_t> out(static_cast<size_t>(total));
  uint8_t* p = out.data();
  std::memcpy(p, kSignature, kSignatureSize);
  p += kSignatureSize;
  auto emit = [&p](const ChunkType& type, const uint8_t* data, size_t n) {
    uint8_t* start = p;
    std::memcpy(p, type.data(), 4);
    put32(p + 4, static_cast<uint32_t>(n));
    if (n) std::memcpy(p + 8, data, n);
    put32(p + 8 + n, crc32(start, 8 + n));
    p += kChunkOverhead + n;
  };
  uint8_t head[kHeadSize] = {};
  head[0] = kFormatVersionMajor;
  head[1] = kFormatVersionMinor;
  head[2] = header.channels;
  head[3] = header.bit_depth;
  put32(head + 4, header.width);
  put32(head + 8, header.height);
  head[12] = header.codec;
  head[13] = 0;
  put16(head + 14, header.quality_x100);
  std::memcpy(head + 16, header.model_id.data(), 16);
  put32(head + 32, header.flags);
  put32(head + 36, header.tile_height);
  emit(kHead, head, kHeadSize);
  for (const Chunk& c : chunks) emit(c.type, c.data.data(), c.data.size());
  emit(kEnd, nullptr, 0);
  return out;
}

ContainerView read_container_view(const uint8_t* data, size_t size, const Limits& limits) {
  if (data == nullptr && size != 0) fail(Status::InvalidArgument, "null input");
  check_signature(data, size);
  size_t pos = kSignatureSize;
  ContainerView v;
  v.header = parse_head(next_chunk(data, size, pos, limits), limits);
  LayoutChecker layout(v.header, false);
  uint64_t count = 1;
  for (;;) {
    if (pos == size)
      fail(Status::CorruptStream, "truncated: the file ends after " + num(size) + " bytes without an ENDC chunk");
    if (++count > limits.max_chunks)
      fail(Status::LimitExceeded, "more than max_chunks=" + num(limits.max_chunks) + " chunks");
    RawChunk c = next_chunk(data, size, pos, limits);
    if (c.type == kEnd) {
      if (c.size != 0) fail(Status::CorruptStream, "ENDC chunk must be empty, has " + num(c.size) + " bytes");
      break;
    }
    layout.add(c.type, c.offset);
    v.chunks.push_back(ChunkView{c.type, c.data, c.size, c.offset});
  }
  layout.finish();
  if (pos != size)
    fail(Status::CorruptStream, num(size - pos) + " trailing byte(s) after the ENDC chunk at offset " + num(pos));
  return v;
}

Container read_container(const uint8_t* data, size_t size, const Limits& limits) {
  ContainerView v = read_container_view(data, size, limits);
  // Everything is validated; the copies total at most `size` bytes.
  Container c;
  c.header = v.header;
  c.chunks.reserve(v.chunks.size());
  for (const ChunkView& cv : v.chunks) c.chunks.push_back(Chunk{cv.type, std::vector<uint8_t>(cv.data, cv.data + cv.size)});
  return c;
}

Header read_header(const uint8_t* data, size_t size, const Limits& limits) {
  if (data == nullptr && size != 0) fail(Status::InvalidArgument, "null input");
  check_signature(data, size);
  size_t pos = kSignatureSize;
  return parse_head(next_chunk(data, size, pos, limits), limits);
}

bool peek_chunk(const uint8_t* data, size_t size, const ChunkType& t, ChunkView* out) noexcept {
  if (!sniff(data, size)) return false;
  size_t pos = kSignatureSize;
  for (bool head = true;; head = false) {
    if (size - pos < 8) return false;
    ChunkType type;
    std::memcpy(type.data(), data + pos, 4);
    const uint64_t len = rd32(data + pos + 4);
    if (len + 4 > uint64_t(size - pos - 8)) return false;
    if (type == kEnd) return false;
    if (!head && type == t) {
      if (crc32(data + pos, size_t(8 + len)) != rd32(data + pos + 8 + len)) return false;
      *out = ChunkView{type, data + pos + 8, size_t(len), pos};
      return true;
    }
    pos += kChunkOverhead + size_t(len);
  }
}

bool sniff(const uint8_t* data, size_t size) noexcept {
  return data != nullptr && size >= kSignatureSize && std::memcmp(data, kSignature, kSignatureSize) == 0;
}

bool has_chunk_type(const uint8_t* data, size_t size, const ChunkType& t) noexcept {
  if (!sniff(data, size)) return false;
  size_t pos = kSignatureSize;
  while (size - pos >= 8) {
    if (std::memcmp(data + pos, t.data(), 4) == 0) return true;
    const uint64_t len = rd32(data + pos + 4);
    if (len + kChunkOverhead > size - pos) return false;
    pos += size_t(len) + kChunkOverhead;
  }
  return false;
}

std::string model_id_hex(const std::array<uint8_t, 16>& id) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (uint8_t b : id) {
    s += digits[b >> 4];
    s += digits[b & 15];
  }
  return s;
}

void check_model_id(const Header& header, const std::array<uint8_t, 16>& expected) {
  if (header.model_id != expected)
    fail(Status::ModelMismatch, "the stream was coded with model " + model_id_hex(header.model_id) +
                                    " but the loaded weights are model " + model_id_hex(expected) +
                                    "; decode it with the weights that made it");
}

}  // namespace lmc
