// lmcodec core: the weights file (.lmw) reader. Byte layout: docs/weights.md.
//
// A Weights object owns the file's bytes and exposes typed metadata and
// tensors. Loading validates everything (magic, version, counts, string and
// array lengths, tensor bounds and sizes, CRC) before it is used; any problem
// is an lmc::Error(InvalidArgument) naming the file's defect. The model id is
// the first 16 bytes of SHA-256 over the whole file.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lmc {

enum class DType : uint8_t { F32 = 0, F16 = 1, I8 = 2, I16 = 3, I32 = 4, U16 = 5, U32 = 6 };
size_t dtype_size(DType t);

struct TensorRef {
  std::string name;
  DType dtype;
  std::vector<uint32_t> dims;
  const uint8_t* data = nullptr;  // into Weights::bytes, 64-byte aligned offset
  size_t nbytes = 0;
  size_t count() const;
};

struct MetaValue {
  enum Kind : uint8_t { I64 = 0, F64 = 1, Str = 2, I64Array = 3, F64Array = 4 } kind;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::vector<int64_t> ia;
  std::vector<double> fa;
};

class Weights {
 public:
  static Weights from_bytes(std::vector<uint8_t> bytes);
  static Weights from_file(const std::string& path);

  const std::array<uint8_t, 16>& model_id() const { return model_id_; }
  size_t size_bytes() const { return bytes_.size(); }

  bool has(const std::string& key) const { return meta_.count(key) != 0; }
  int64_t get_i64(const std::string& key) const;
  double get_f64(const std::string& key) const;
  const std::string& get_str(const std::string& key) const;
  const std::vector<int64_t>& get_i64_array(const std::string& key) const;
  const std::vector<double>& get_f64_array(const std::string& key) const;

  bool has_tensor(const std::string& name) const { return tensors_.count(name) != 0; }
  const TensorRef& tensor(const std::string& name) const;
  // Typed access; throws unless dtype and element count match (count 0 = any).
  // floats() converts f32 / f16 / i8 (times the per-output-channel
  // "<layer>.wscale", out_axis = the output-channel axis) to float.
  std::vector<float> floats(const std::string& name, size_t expect_count = 0, int out_axis = 0) const;
  template <typename T>
  const T* as(const std::string& name, DType dt, size_t expect_count) const;

 private:
  std::vector<uint8_t> bytes_;
  std::map<std::string, MetaValue> meta_;
  std::map<std::string, TensorRef> tensors_;
  std::array<uint8_t, 16> model_id_{};
  const MetaValue& meta(const std::string& key, MetaValue::Kind kind) const;
};

float half_to_float(uint16_t h);
[[noreturn]] void throw_bad_tensor(const std::string& name);

template <typename T>
const T* Weights::as(const std::string& name, DType dt, size_t expect_count) const {
  const TensorRef& t = tensor(name);
  if (t.dtype != dt || (expect_count && t.count() != expect_count))
    throw_bad_tensor(name);
  return reinterpret_cast<const T*>(t.data);
}

}  // namespace lmc
