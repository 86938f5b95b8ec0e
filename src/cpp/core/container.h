// lmcodec core: the .lmc container (reader and writer).
//
// READ ME FIRST
// -------------
// The byte layout is specified in docs/format.md; this is its reference
// implementation. In short:
//
//   "\x89LMC\r\n\x1a\n"                                 8-byte signature
//   chunk*: type[4] (ASCII letters) | u32 LE length | data | u32 LE CRC-32
//           (the CRC covers type + length + data)
//   HEAD first, ENDC (empty) last, nothing after it. Uppercase first letter
//   = critical (unknown ones are refused), lowercase = optional (unknown
//   ones are skipped but reported).
//   Payload: per strip an optional SIDE (z bitstream) then a LATN (y
//   bitstream), or instead one RESD (the planes coded losslessly or with an
//   L-infinity bound; no SIDE/LATN then); ALPH (alpha plane) iff flag
//   HAS_ALPHA; iccp/exif/xmpd
//   metadata at most once each.
//
// Writing:   std::vector<uint8_t> file = write_container(header, chunks);
//            `chunks` excludes HEAD and ENDC (added by the writer), in file
//            order. The writer validates everything the reader validates.
// Reading:   Container c = read_container(data, size);       // owns copies
//            ContainerView v = read_container_view(data, size);  // spans into
//                                                            // `data`, no copy
//            const Chunk* latents = c.find(kLatents);
// Header:    Header h = read_header(data, size);   // HEAD only, CRC-checked
// Sniffing:  bool yes = sniff(data, size);          // signature only
// Weights:   check_model_id(h, my_model_id);        // ModelMismatch if other
//
// Errors (all lmc::Error): CorruptStream for malformed, truncated or damaged
// input (CRC failures included); Unsupported for a newer major version,
// unknown codec / channel layout / bit depth, or an unknown critical chunk;
// LimitExceeded when a dimension, pixel count, chunk size or chunk count is
// over the Limits; InvalidArgument for bad writer input; ModelMismatch from
// check_model_id. Every length is checked against the remaining input (and
// the limits) before anything is allocated or read; the reader never reads
// outside [data, data + size).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lmc {

constexpr uint8_t kFormatVersionMajor = 1;
constexpr uint8_t kFormatVersionMinor = 0;

constexpr size_t kSignatureSize = 8;
extern const uint8_t kSignature[kSignatureSize];  // 89 4C 4D 43 0D 0A 1A 0A

constexpr size_t kHeadSize = 40;         // HEAD data length in version 1.0
constexpr size_t kMaxHeadSize = 1024;    // HEAD data length accepted from newer minors
constexpr size_t kChunkOverhead = 12;    // type + length + crc

using ChunkType = std::array<char, 4>;

// Build a ChunkType from a 4-character string ("LATN"). No validation.
constexpr ChunkType chunk_type(const char (&s)[5]) { return ChunkType{s[0], s[1], s[2], s[3]}; }

constexpr ChunkType kHead = chunk_type("HEAD");
constexpr ChunkType kSideInfo = chunk_type("SIDE");
constexpr ChunkType kLatents = chunk_type("LATN");
constexpr ChunkType kLatentsCtx = chunk_type("LATC");  // latents of a context-model hyperprior (core/context_model.h)
constexpr ChunkType kAlpha = chunk_type("ALPH");
constexpr ChunkType kResidual = chunk_type("RESD");  // lossless / near-lossless planes (core/residual.h)
constexpr ChunkType kIcc = chunk_type("iccp");
constexpr ChunkType kExif = chunk_type("exif");
constexpr ChunkType kXmp = chunk_type("xmpd");
constexpr ChunkType kEnd = chunk_type("ENDC");
constexpr ChunkType kQualityMap = chunk_type("QMAP");  // spatial quality map (core/quality_map.h)

// Four ASCII letters?
bool chunk_type_valid(const ChunkType& t) noexcept;
// Uppercase first letter (PNG rule).
inline bool chunk_type_critical(const ChunkType& t) noexcept { return t[0] >= 'A' && t[0] <= 'Z'; }
// One of the types defined above (HEAD and ENDC included).
bool chunk_type_known(const ChunkType& t) noexcept;
std::string chunk_type_str(const ChunkType& t);  // printable, for messages

enum CodecId : uint8_t { kCodecHyperprior = 1, kCodecPca = 2 };

enum HeaderFlags : uint32_t {
  kFlagHasAlpha = 1u << 0,  // an ALPH chunk is present
  kKnownFlags = kFlagHasAlpha,
};

struct Header {
  uint32_t width = 0, height = 0;
  uint8_t channels = 0;        // 1 gray, 3 RGB, 4 RGBA
  uint8_t bit_depth = 8;       // only 8
  uint8_t codec = 0;           // CodecId (core/codecs.h: the Codec behind each)
  uint16_t quality_x100 = 0;   // 100 ..= 10000
  std::array<uint8_t, 16> model_id{};  // first 16 bytes of SHA-256(weights file)
  uint32_t flags = 0;          // HeaderFlags
  uint32_t tile_height = 0;    // 0 = one strip, else rows per strip (1 ..= height)
  // Set by the reader; ignored by the writer (always writes its own version).
  uint8_t version_major = kFormatVersionMajor;
  uint8_t version_minor = kFormatVersionMinor;

  uint64_t pixels() const { return uint64_t(width) * height; }
  // ceil(height / tile_height), or 1 for tile_height == 0.
  uint32_t strip_count() const;
};

struct Limits {
  uint64_t max_pixels = uint64_t(1) << 28;       // width * height
  uint32_t max_dimension = 65535;                // width and height each
  uint64_t max_chunk_bytes = uint64_t(1) << 30;  // data bytes of any one chunk
  uint64_t max_chunks = uint64_t(1) << 20;       // chunks per file, HEAD/ENDC included
};

// An owned chunk (writer input, owning reader output).
struct Chunk {
  ChunkType type{};
  std::vector<uint8_t> data;
};

// A chunk of a parsed buffer: points into the caller's input, which must
// outlive it.
struct ChunkView {
  ChunkType type{};
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t offset = 0;  // of the chunk's type field in the input (for messages)
};

// Chunks are every chunk between HEAD and ENDC in file order, unknown
// optional chunks included (they are "skipped": the codec ignores them, but
// a caller can see or copy them; see unknown()).
struct Container {
  Header header;
  std::vector<Chunk> chunks;

  const Chunk* find(const ChunkType& t) const;                // first, or nullptr
  std::vector<const Chunk*> find_all(const ChunkType& t) const;  // in order
  std::vector<const Chunk*> unknown() const;                  // unknown optional chunks
};

struct ContainerView {
  Header header;
  std::vector<ChunkView> chunks;

  const ChunkView* find(const ChunkType& t) const;
  std::vector<const ChunkView*> find_all(const ChunkType& t) const;
  std::vector<const ChunkView*> unknown() const;
};

// Serialize. `chunks` are the chunks between HEAD and ENDC in file order.
// Throws InvalidArgument (or LimitExceeded) for anything the reader would
// refuse with these limits.
std::vector<uint8_t> write_container(const Header& header, const std::vector<Chunk>& chunks,
                                     const Limits& limits = Limits());

// Full validation: signature, every chunk's CRC, type, order and count
// rules, header fields, limits, ENDC last and no trailing bytes.
ContainerView read_container_view(const uint8_t* data, size_t size, const Limits& limits = Limits());
Container read_container(const uint8_t* data, size_t size, const Limits& limits = Limits());

// Signature and HEAD chunk only (cheap; the rest of the file is not read).
// HEAD is still CRC-checked and its fields and limits validated.
Header read_header(const uint8_t* data, size_t size, const Limits& limits = Limits());

// The first chunk of type t after HEAD, found by walking the chunk lengths
// (only that chunk's CRC is checked), for info() queries that must not read a
// whole file. False when there is none before ENDC, or when the walk meets a
// malformed or truncated chunk first. Never throws.
bool peek_chunk(const uint8_t* data, size_t size, const ChunkType& t, ChunkView* out) noexcept;

// True if the input starts with the .lmc signature. Never throws.
bool sniff(const uint8_t* data, size_t size) noexcept;

// Whether a chunk of type t starts at one of the chunk boundaries of data
// (a walk over the lengths only: no CRC or order checks; false on damage).
bool has_chunk_type(const uint8_t* data, size_t size, const ChunkType& t) noexcept;

// Validate header fields and limits. `writing` selects InvalidArgument
// instead of CorruptStream/Unsupported for invalid fields.
void validate_header(const Header& h, const Limits& limits, bool writing);

// Throws ModelMismatch ("stream was made with model <hex>, these weights are
// <hex>") unless header.model_id == expected.
void check_model_id(const Header& header, const std::array<uint8_t, 16>& expected);

std::string model_id_hex(const std::array<uint8_t, 16>& id);

}  // namespace lmc
