// lmcodec entropy coder: table-driven rANS with 16-bit CDFs.
//
// READ ME FIRST
// -------------
// Symbols are int32 values. Each symbol chooses its probability table by an
// index. A table t describes the values offset[t] .. offset[t]+n_t-1 with n_t
// regular symbols plus one ESCAPE symbol (the last one). A value outside that
// range is coded as ESCAPE followed by the value in bypass bits, so *any*
// int32 (including INT32_MIN / INT32_MAX) is codable and no input can make the
// encoder fail.
//
// A quantized CDF for a table with n regular symbols has n+2 entries:
//   cdf[0] = 0 < cdf[1] < ... < cdf[n+1] = 1 << kCdfPrecision
// so every symbol, escape included, has frequency >= 1. Tables are built once
// (at export time) by pmf_to_quantized_cdf and stored as integers; decoders
// never rebuild them from floats.
//
// Streams are self-contained byte strings: rans_decode needs the same
// indexes and tables, and the symbol count. A decoder given garbage never
// reads out of bounds, never loops forever, and reports CorruptStream when
// the stream does not end exactly where the encoder ended it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace lmc {

constexpr int kCdfPrecision = 16;
constexpr uint32_t kCdfTotal = 1u << kCdfPrecision;
constexpr int kMaxCdfLength = 1 << 16;  // entries per table (n + 2), checked on use

// Stream format (implementation notes, rans.cc)
// ---------------------------------------------
// kRansLanes interleaved rANS coders, each with a 64-bit state kept in
// [2^31, 2^63) and renormalised by whole 32-bit words. Symbol i uses lane
// i % kRansLanes. Byte layout of a stream of n symbols:
//   n == 0 : the empty byte string.
//   n >= 1 : min(n, kRansLanes) final encoder states (u64 little-endian,
//            lane 0 first), then the renormalisation words (u32 LE) in the
//            order the decoder consumes them.
// A valid stream ends exactly when every lane is back at its initial state
// 2^31 and all words are consumed; anything else is CorruptStream.
// Escape (value v outside [offset, offset+n)): ESCAPE symbol, then on the
// same lane 6 raw bits (bit 0: v is above the range; bits 1-5: nb), then nb
// raw bits (low 16 first, then the rest) of m - 2^nb, where m >= 1 is how far
// v lies outside the range (1 = adjacent) and nb = floor(log2 m) <= 31: an
// Elias-gamma-like code with a fixed-size length. Raw bits are uniform rANS
// symbols (scale 2^bits), so the stream stays a single word sequence.
constexpr int kRansLanes = 4;

// Quantize a PMF over n regular symbols into n+2 CDF entries. The escape
// symbol gets the mass missing from the PMF (1 - sum, at least one count).
// Negative or non-finite entries are treated as 0. n must be >= 1 and
// n + 2 <= kMaxCdfLength. Deterministic for a given input.
std::vector<uint32_t> pmf_to_quantized_cdf(const double* pmf, size_t n);

// A set of tables as stored in a weights file: table t has cdf_lengths[t]
// valid entries at cdfs + t * stride.
struct CdfTables {
  const uint32_t* cdfs = nullptr;
  size_t stride = 0;
  const int32_t* cdf_lengths = nullptr;
  const int32_t* offsets = nullptr;
  size_t count = 0;
};

// Throws lmc::Error(InvalidArgument) unless every table is a valid quantized
// CDF (starts at 0, ends at kCdfTotal, strictly increasing, 3 <= length <=
// min(stride, kMaxCdfLength)).
void validate_tables(const CdfTables& tables);

// ---- Building tables: the one place frequencies and CDFs become CdfTables.
// Weights files and alpha chunks store each table as its frequencies (the n
// regular symbols', then the escape's: n + 1 values, each >= 1, summing to
// kCdfTotal); pmf_to_quantized_cdf gives the CDF (n + 2 entries) directly.

// CdfTables that own their data: count x stride entries, each table padded
// with its last entry (kCdfTotal) to the longest one.
struct OwnedTables {
  std::vector<uint32_t> cdfs;  // count x stride
  std::vector<int32_t> lengths;  // CDF entries of each table
  std::vector<int32_t> offsets;
  size_t stride = 0;
  CdfTables view() const;
};

// Table t's CDF from its freq_counts[t] frequencies, which follow those of
// tables 0 .. t-1 in freqs (so freqs holds their sum); offsets[t] its first
// symbol. The caller has checked the counts (2 <= freq_counts[t] <
// kMaxCdfLength) and their sum; the result is checked by validate_tables
// (InvalidArgument on a zero frequency or a wrong total).
OwnedTables cdf_tables_from_freqs(const uint16_t* freqs, const int32_t* freq_counts, const int32_t* offsets,
                                  size_t count);

// Tables from whole CDFs (e.g. pmf_to_quantized_cdf's), not validated.
OwnedTables cdf_tables_from_cdfs(const std::vector<std::vector<uint32_t>>& cdfs, const std::vector<int32_t>& offsets);

// The n + 1 frequencies of a CDF of n + 2 entries (what a file stores).
std::vector<uint16_t> cdf_to_freqs(const std::vector<uint32_t>& cdf);

// Encode n symbols; table of symbol i is indexes[i] (InvalidArgument when an
// index is out of range). The stream is appended to out.
void rans_encode(const int32_t* symbols, const int32_t* indexes, size_t n, const CdfTables& tables,
                 std::vector<uint8_t>& out);

// Decode n symbols from data[0..size). Throws lmc::Error(CorruptStream) when
// the stream is malformed or does not end exactly at size.
void rans_decode(const uint8_t* data, size_t size, const int32_t* indexes, size_t n,
                 const CdfTables& tables, int32_t* symbols_out);

// Incremental decoding: the same stream as rans_decode, decoded in
// consecutive pieces, so that a caller never holds all the symbols or
// indexes at once (per-strip / per-channel buffers) and a payload that runs
// dry fails at the first piece that needs more of it. Same symbols and the
// same checks as rans_decode:
//
//   RansDecoder dec(data, size, n_total, tables);   // CorruptStream: too short
//   dec.decode(indexes, n1, out1);                  // symbols [0, n1)
//   dec.decode(indexes2, n2, out2);                 // symbols [n1, n1 + n2) ...
//   dec.finish();                                   // after n_total symbols
//
// decode throws InvalidArgument for an index out of range or more symbols
// than n_total, CorruptStream when the stream is malformed or exhausted;
// finish throws CorruptStream unless every symbol was decoded and the stream
// ends exactly there. Tables are validated and prepared the first time a
// symbol uses them. The tables must outlive the decoder.
class RansDecoder {
 public:
  RansDecoder(const uint8_t* data, size_t size, size_t n_total, const CdfTables& tables);
  ~RansDecoder();
  RansDecoder(const RansDecoder&) = delete;
  RansDecoder& operator=(const RansDecoder&) = delete;
  void decode(const int32_t* indexes, size_t n, int32_t* symbols_out);
  void finish();
  size_t position() const;  // symbols decoded so far

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// How much a stream can hold (used to refuse a header that promises more
// symbols than its payload could possibly code, before allocating for them).
// Decoding a symbol of frequency f (of 2^16) takes at least
// log2(2^16 / f) - 4.41e-5 bits from the lane state (rans.cc), so n symbols
// whose tables' largest frequency is f need at least n * rans_min_symbol_bits(f)
// bits, and a stream of `size` bytes holds at most rans_capacity_bits(size).
double rans_min_symbol_bits(uint32_t max_freq);
double rans_capacity_bits(size_t size);
// Largest frequency of table t (validated).
uint32_t rans_max_frequency(const CdfTables& tables, size_t t);

}  // namespace lmc
