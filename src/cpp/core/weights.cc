#include "core/weights.h"

#include <cmath>
#include <cstring>
#include <fstream>

#include "util/crc32.h"
#include "util/error.h"
#include "util/sha256.h"

namespace lmc {
namespace {

constexpr uint32_t kVersion = 1;
constexpr size_t kAlign = 64;
constexpr uint32_t kMaxEntries = 1u << 16;

[[noreturn]] void bad(const std::string& msg) { fail(Status::InvalidArgument, "weights file: " + msg); }

class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  size_t pos() const { return pos_; }
  const uint8_t* take(size_t k) {
    if (k > n_ - pos_) bad("truncated");
    const uint8_t* r = p_ + pos_;
    pos_ += k;
    return r;
  }
  template <typename T>
  T get() {
    T v;
    std::memcpy(&v, take(sizeof(T)), sizeof(T));  // little-endian hosts only (checked at load)
    return v;
  }
  std::string str(size_t k) {
    const uint8_t* s = take(k);
    return std::string(reinterpret_cast<const char*>(s), k);
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
};

bool host_little_endian() {
  uint16_t x = 1;
  uint8_t b;
  std::memcpy(&b, &x, 1);
  return b == 1;
}

}  // namespace

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::I8: return 1;
    case DType::I16: return 2;
    case DType::I32: return 4;
    case DType::U16: return 2;
    case DType::U32: return 4;
  }
  return 0;
}

size_t TensorRef::count() const {
  size_t c = 1;
  for (uint32_t d : dims) c *= d;
  return c;
}

void throw_bad_tensor(const std::string& name) { bad("tensor '" + name + "' has the wrong type or size"); }

float half_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h >> 15) << 31;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t man = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: renormalize
      int e = -1;
      do {
        ++e;
        man <<= 1;
      } while (!(man & 0x400));
      bits = sign | uint32_t(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | man << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | man << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

Weights Weights::from_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) fail(Status::InvalidArgument, "cannot open weights file: " + path);
  std::streamoff n = f.tellg();
  if (n < 0 || n > (std::streamoff(1) << 31)) bad("unreasonable size");
  std::vector<uint8_t> bytes(static_cast<size_t>(n));
  f.seekg(0);
  if (n > 0 && !f.read(reinterpret_cast<char*>(bytes.data()), n)) bad("read error");
  return from_bytes(std::move(bytes));
}

Weights Weights::from_bytes(std::vector<uint8_t> bytes) {
  if (!host_little_endian()) fail(Status::Unsupported, "big-endian hosts are not supported");
  Weights w;
  w.bytes_ = std::move(bytes);
  const uint8_t* p = w.bytes_.data();
  const size_t n = w.bytes_.size();
  if (n < 20 || std::memcmp(p, "LMCW", 4) != 0) bad("bad magic (not an lmcodec weights file)");
  uint32_t stored_crc;
  std::memcpy(&stored_crc, p + n - 4, 4);
  if (crc32(p, n - 4) != stored_crc) bad("CRC mismatch (file damaged)");
  auto digest = sha256(p, n);
  std::memcpy(w.model_id_.data(), digest.data(), 16);

  Reader r(p, n - 4);
  r.take(4);
  uint32_t version = r.get<uint32_t>();
  if (version != kVersion) fail(Status::Unsupported, "weights file version " + std::to_string(version) + " is not supported");
  uint32_t nmeta = r.get<uint32_t>();
  uint32_t ntens = r.get<uint32_t>();
  if (nmeta > kMaxEntries || ntens > kMaxEntries) bad("too many entries");
  for (uint32_t i = 0; i < nmeta; ++i) {
    uint16_t kl = r.get<uint16_t>();
    std::string key = r.str(kl);
    MetaValue v;
    uint8_t kind = r.get<uint8_t>();
    switch (kind) {
      case MetaValue::I64: v.i = r.get<int64_t>(); break;
      case MetaValue::F64: v.f = r.get<double>(); break;
      case MetaValue::Str: {
        uint32_t len = r.get<uint32_t>();
        v.s = r.str(len);
        break;
      }
      case MetaValue::I64Array:
      case MetaValue::F64Array: {
        uint32_t cnt = r.get<uint32_t>();
        if (cnt > (n - r.pos()) / 8) bad("array length out of bounds");
        for (uint32_t k = 0; k < cnt; ++k) {
          if (kind == MetaValue::I64Array) v.ia.push_back(r.get<int64_t>());
          else v.fa.push_back(r.get<double>());
        }
        break;
      }
      default: bad("unknown metadata type for key '" + key + "'");
    }
    v.kind = static_cast<MetaValue::Kind>(kind);
    if (!w.meta_.emplace(key, std::move(v)).second) bad("duplicate key '" + key + "'");
  }
  struct Desc {
    TensorRef t;
    uint64_t off;
  };
  std::vector<Desc> descs;
  for (uint32_t i = 0; i < ntens; ++i) {
    Desc d;
    uint16_t nl = r.get<uint16_t>();
    d.t.name = r.str(nl);
    uint8_t dt = r.get<uint8_t>();
    if (dt > 6) bad("unknown dtype for tensor '" + d.t.name + "'");
    d.t.dtype = static_cast<DType>(dt);
    uint8_t ndim = r.get<uint8_t>();
    if (ndim > 8) bad("too many dimensions");
    uint64_t count = 1;
    for (uint8_t k = 0; k < ndim; ++k) {
      uint32_t dim = r.get<uint32_t>();
      d.t.dims.push_back(dim);
      count *= dim;
      if (count > (uint64_t(1) << 32)) bad("tensor too large");
    }
    d.off = r.get<uint64_t>();
    uint64_t nb = r.get<uint64_t>();
    if (nb != count * dtype_size(d.t.dtype)) bad("tensor '" + d.t.name + "' size mismatch");
    d.t.nbytes = static_cast<size_t>(nb);
    descs.push_back(std::move(d));
  }
  size_t base = (r.pos() + kAlign - 1) / kAlign * kAlign;
  const size_t data_end = n - 4;
  for (Desc& d : descs) {
    if (base > data_end || d.off > data_end - base || d.t.nbytes > data_end - base - d.off)
      bad("tensor '" + d.t.name + "' lies outside the file");
    if (d.off % kAlign) bad("tensor '" + d.t.name + "' is misaligned");
    d.t.data = p + base + d.off;
    std::string name = d.t.name;
    if (!w.tensors_.emplace(name, std::move(d.t)).second) bad("duplicate tensor '" + name + "'");
  }
  return w;
}

const MetaValue& Weights::meta(const std::string& key, MetaValue::Kind kind) const {
  auto it = meta_.find(key);
  if (it == meta_.end()) bad("missing key '" + key + "'");
  if (it->second.kind != kind) bad("key '" + key + "' has the wrong type");
  return it->second;
}

int64_t Weights::get_i64(const std::string& key) const { return meta(key, MetaValue::I64).i; }
double Weights::get_f64(const std::string& key) const { return meta(key, MetaValue::F64).f; }
const std::string& Weights::get_str(const std::string& key) const { return meta(key, MetaValue::Str).s; }
const std::vector<int64_t>& Weights::get_i64_array(const std::string& key) const { return meta(key, MetaValue::I64Array).ia; }
const std::vector<double>& Weights::get_f64_array(const std::string& key) const { return meta(key, MetaValue::F64Array).fa; }

const TensorRef& Weights::tensor(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) bad("missing tensor '" + name + "'");
  return it->second;
}

std::vector<float> Weights::floats(const std::string& name, size_t expect_count, int out_axis) const {
  const TensorRef& t = tensor(name);
  size_t c = t.count();
  if (expect_count && c != expect_count) throw_bad_tensor(name);
  std::vector<float> out(c);
  switch (t.dtype) {
    case DType::F32: std::memcpy(out.data(), t.data, c * 4); break;
    case DType::F16:
      for (size_t i = 0; i < c; ++i) {
        uint16_t h;
        std::memcpy(&h, t.data + 2 * i, 2);
        out[i] = half_to_float(h);
      }
      break;
    case DType::I8: {
      // per-output-channel scale in "<layer>.wscale"; out_axis is the
      // output-channel axis (0 for conv [cout][cin][k][k], 1 for deconv)
      std::string sname = name.substr(0, name.rfind('.')) + ".wscale";
      const TensorRef& s = tensor(sname);
      if (s.dtype != DType::F32 || t.dims.size() != 4) throw_bad_tensor(sname);
      const float* sc = reinterpret_cast<const float*>(s.data);
      size_t sn = s.count();
      const int8_t* q = reinterpret_cast<const int8_t*>(t.data);
      // conv: [cout][cin][k][k] scale per dim 0; deconv: [cin][cout][k][k] per dim 1
      size_t d0 = t.dims[0], d1 = t.dims[1], kk = size_t(t.dims[2]) * t.dims[3];
      bool per_dim0 = out_axis == 0;
      if (sn != (per_dim0 ? d0 : d1)) throw_bad_tensor(sname);
      for (size_t a = 0; a < d0; ++a)
        for (size_t b = 0; b < d1; ++b) {
          float scale = sc[per_dim0 ? a : b];
          for (size_t k = 0; k < kk; ++k) {
            size_t idx = (a * d1 + b) * kk + k;
            out[idx] = float(q[idx]) * scale;
          }
        }
      break;
    }
    default: throw_bad_tensor(name);
  }
  for (float v : out)
    if (!std::isfinite(v)) bad("tensor '" + name + "' has non-finite values");
  return out;
}

}  // namespace lmc
