// The only file that knows about Python: pybind11 glue for the lmcodec core.
// Two modules: lmcodec._core is the public C API (include/lmcodec.h) and
// nothing else; lmcodec._core.internal exposes core parts to training, tests,
// tools and benchmarks (as Pillow keeps _imaging apart from its plugins).
//
// Every lmc::Error thrown by the core becomes lmcodec.LmcError (a ValueError
// subclass); any other C++ exception becomes LmcError too, never a crash.
// Long-running calls release the GIL.
//
// The file is organised in sections, one per core component.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/container.h"
#include "util/error.h"
#include "core/explain.h"    // explain section
#include "core/pca_codec.h"  // pca section
#include "core/quality_map.h"  // explain section
#include "util/profile.h"    // profile section
#include "core/rans.h"
#include "dsp/cpu.h"
#include "util/threadpool.h"
#include "lmcodec.h"

namespace py = pybind11;

namespace {

template <typename T>
using carray = py::array_t<T, py::array::c_style | py::array::forcecast>;

py::bytes to_bytes(const std::vector<uint8_t>& v) {
  return py::bytes(reinterpret_cast<const char*>(v.data()), v.size());
}

// ---------------------------------------------------------------- coder ---

// cdfs: (T, L) uint32, cdf_lengths: (T,), offsets: (T,)
lmc::CdfTables tables_from(const carray<uint32_t>& cdfs, const carray<int32_t>& lengths,
                           const carray<int32_t>& offsets) {
  if (cdfs.ndim() != 2) throw lmc::Error(lmc::Status::InvalidArgument, "cdfs must be a 2-D array (tables x entries)");
  if (lengths.ndim() != 1 || offsets.ndim() != 1 || static_cast<size_t>(lengths.shape(0)) != static_cast<size_t>(cdfs.shape(0)) ||
      static_cast<size_t>(offsets.shape(0)) != static_cast<size_t>(cdfs.shape(0)))
    throw lmc::Error(lmc::Status::InvalidArgument, "cdf_lengths and offsets must be 1-D with one entry per table");
  lmc::CdfTables t;
  t.cdfs = cdfs.data();
  t.stride = static_cast<size_t>(cdfs.shape(1));
  t.cdf_lengths = lengths.data();
  t.offsets = offsets.data();
  t.count = static_cast<size_t>(cdfs.shape(0));
  lmc::validate_tables(t);
  return t;
}

void check_same_1d(const py::array& a, const py::array& b, const char* what) {
  if (a.ndim() != 1 || b.ndim() != 1 || a.shape(0) != b.shape(0))
    throw lmc::Error(lmc::Status::InvalidArgument, std::string(what) + ": symbols and indexes must be 1-D arrays of equal length");
}

// An incremental rANS decoder that owns its stream and tables.
class IncrementalRans {
 public:
  IncrementalRans(py::bytes data, size_t n_total, const carray<uint32_t>& cdfs, const carray<int32_t>& lengths,
                  const carray<int32_t>& offsets)
      : buf_(data),
        cdfs_(cdfs.data(), cdfs.data() + cdfs.size()),
        lengths_(lengths.data(), lengths.data() + lengths.size()),
        offsets_(offsets.data(), offsets.data() + offsets.size()) {
    lmc::CdfTables t = tables_from(cdfs, lengths, offsets);
    t.cdfs = cdfs_.data();
    t.cdf_lengths = lengths_.data();
    t.offsets = offsets_.data();
    tables_ = t;
    dec_ = std::make_unique<lmc::RansDecoder>(reinterpret_cast<const uint8_t*>(buf_.data()), buf_.size(), n_total,
                                              tables_);
  }
  carray<int32_t> decode(const carray<int32_t>& indexes) {
    if (indexes.ndim() != 1) throw lmc::Error(lmc::Status::InvalidArgument, "indexes must be 1-D");
    carray<int32_t> out(indexes.shape(0));
    dec_->decode(indexes.data(), size_t(indexes.shape(0)), out.mutable_data());
    return out;
  }
  void finish() { dec_->finish(); }

 private:
  std::string buf_;
  std::vector<uint32_t> cdfs_;
  std::vector<int32_t> lengths_, offsets_;
  lmc::CdfTables tables_;
  std::unique_ptr<lmc::RansDecoder> dec_;
};

void bind_coder(py::module_& m) {
  m.attr("CDF_PRECISION") = lmc::kCdfPrecision;
  m.def(
      "pmf_to_quantized_cdf",
      [](const carray<double>& pmf) {
        if (pmf.ndim() != 1) throw lmc::Error(lmc::Status::InvalidArgument, "pmf must be 1-D");
        std::vector<uint32_t> cdf = lmc::pmf_to_quantized_cdf(pmf.data(), static_cast<size_t>(pmf.shape(0)));
        carray<uint32_t> out(static_cast<py::ssize_t>(cdf.size()));
        std::memcpy(out.mutable_data(), cdf.data(), cdf.size() * sizeof(uint32_t));
        return out;
      },
      py::arg("pmf"), "Quantized 16-bit CDF (n+2 entries, escape last) from a PMF over n symbols.");
  m.def(
      "rans_encode",
      [](const carray<int32_t>& symbols, const carray<int32_t>& indexes, const carray<uint32_t>& cdfs,
         const carray<int32_t>& cdf_lengths, const carray<int32_t>& offsets) {
        check_same_1d(symbols, indexes, "rans_encode");
        lmc::CdfTables t = tables_from(cdfs, cdf_lengths, offsets);
        std::vector<uint8_t> out;
        {
          py::gil_scoped_release nogil;
          lmc::rans_encode(symbols.data(), indexes.data(), static_cast<size_t>(symbols.shape(0)), t, out);
        }
        return to_bytes(out);
      },
      py::arg("symbols"), py::arg("indexes"), py::arg("cdfs"), py::arg("cdf_lengths"), py::arg("offsets"));
  m.def(
      "rans_decode",
      [](py::bytes data, const carray<int32_t>& indexes, const carray<uint32_t>& cdfs,
         const carray<int32_t>& cdf_lengths, const carray<int32_t>& offsets) {
        if (indexes.ndim() != 1) throw lmc::Error(lmc::Status::InvalidArgument, "indexes must be 1-D");
        lmc::CdfTables t = tables_from(cdfs, cdf_lengths, offsets);
        std::string buf = data;
        carray<int32_t> out(indexes.shape(0));
        int32_t* dst = out.mutable_data();
        {
          py::gil_scoped_release nogil;
          lmc::rans_decode(reinterpret_cast<const uint8_t*>(buf.data()), buf.size(), indexes.data(),
                           static_cast<size_t>(indexes.shape(0)), t, dst);
        }
        return out;
      },
      py::arg("data"), py::arg("indexes"), py::arg("cdfs"), py::arg("cdf_lengths"), py::arg("offsets"));
  // Incremental decoding (rans.h's RansDecoder): the context model's passes
  // need the symbols of one pass before the indexes of the next exist.
  py::class_<IncrementalRans>(m, "RansDecoder")
      .def(py::init<py::bytes, size_t, const carray<uint32_t>&, const carray<int32_t>&, const carray<int32_t>&>(),
           py::arg("data"), py::arg("n_total"), py::arg("cdfs"), py::arg("cdf_lengths"), py::arg("offsets"))
      .def("decode", &IncrementalRans::decode, py::arg("indexes"), "the next len(indexes) symbols")
      .def("finish", &IncrementalRans::finish, "CorruptStream unless every symbol was decoded and the stream ends");
}

// ------------------------------------------------------------ container ---
// The .lmc container (docs/format.md, core/container.h):
//   container_write(header: dict, chunks: [(type, data)], **limits) -> bytes
//   container_read(data, **limits, expected_model_id=None) -> (header dict, [(type str, bytes)])
//   container_header(data, **limits, expected_model_id=None) -> header dict (HEAD only)
//   container_sniff(data) -> bool;  default_limits() -> dict
// Header dict keys: width, height, channels, bit_depth, codec, quality
// (float, 1.00..100.00 in steps of 0.01), model_id (16 bytes), flags,
// tile_height, version ((major, minor); ignored when writing).

// A C-contiguous read-only view of a bytes-like object.
class ContBuffer {
 public:
  explicit ContBuffer(py::handle obj, const char* what) {
    if (PyObject_GetBuffer(obj.ptr(), &view_, PyBUF_SIMPLE) != 0) {
      PyErr_Clear();
      throw py::type_error(std::string(what) + " must be a bytes-like object, not " +
                           std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
    }
    immutable_ = PyBytes_Check(obj.ptr());
  }
  ~ContBuffer() { PyBuffer_Release(&view_); }
  ContBuffer(const ContBuffer&) = delete;
  ContBuffer& operator=(const ContBuffer&) = delete;
  const uint8_t* data() const { return static_cast<const uint8_t*>(view_.buf); }
  size_t size() const { return static_cast<size_t>(view_.len); }
  bool immutable() const { return immutable_; }  // bytes: may be read without the GIL

 private:
  Py_buffer view_{};
  bool immutable_ = false;
};

uint64_t cont_uint(py::handle v, const std::string& name, uint64_t max) {
  const std::string msg = name + " must be an integer in 0.." + std::to_string(max);
  if (PyBool_Check(v.ptr())) throw lmc::Error(lmc::Status::InvalidArgument, msg + ", not a bool");
  PyObject* idx = PyNumber_Index(v.ptr());
  if (!idx) {
    PyErr_Clear();
    throw lmc::Error(lmc::Status::InvalidArgument, msg);
  }
  unsigned long long u = PyLong_AsUnsignedLongLong(idx);
  Py_DECREF(idx);
  if (u == static_cast<unsigned long long>(-1) && PyErr_Occurred()) {
    PyErr_Clear();
    throw lmc::Error(lmc::Status::InvalidArgument, msg);
  }
  if (u > max) throw lmc::Error(lmc::Status::InvalidArgument, msg);
  return u;
}

lmc::Limits cont_limits(const py::object& max_pixels, const py::object& max_dimension,
                        const py::object& max_chunk_bytes, const py::object& max_chunks) {
  lmc::Limits l;
  const uint64_t u64max = ~uint64_t(0);
  if (!max_pixels.is_none()) l.max_pixels = cont_uint(max_pixels, "max_pixels", u64max);
  if (!max_dimension.is_none()) l.max_dimension = static_cast<uint32_t>(cont_uint(max_dimension, "max_dimension", 0xFFFFFFFFu));
  if (!max_chunk_bytes.is_none()) l.max_chunk_bytes = cont_uint(max_chunk_bytes, "max_chunk_bytes", u64max);
  if (!max_chunks.is_none()) l.max_chunks = cont_uint(max_chunks, "max_chunks", u64max);
  return l;
}

std::array<uint8_t, 16> cont_model_id(py::handle v) {
  ContBuffer b(v, "model_id");
  if (b.size() != 16)
    throw lmc::Error(lmc::Status::InvalidArgument, "model_id must be 16 bytes, got " + std::to_string(b.size()));
  std::array<uint8_t, 16> id;
  std::memcpy(id.data(), b.data(), 16);
  return id;
}

lmc::Header cont_header_from(const py::dict& d) {
  static const char* const keys[] = {"width", "height", "channels", "bit_depth", "codec", "quality",
                                     "model_id", "flags", "tile_height", "version"};
  for (auto item : d) {
    if (!py::isinstance<py::str>(item.first))
      throw lmc::Error(lmc::Status::InvalidArgument, "header keys must be strings");
    const std::string k = py::cast<std::string>(item.first);
    bool ok = false;
    for (const char* known : keys) ok = ok || k == known;
    if (!ok) throw lmc::Error(lmc::Status::InvalidArgument, "unknown header key '" + k + "'");
  }
  for (const char* req : {"width", "height", "channels", "codec", "quality", "model_id"})
    if (!d.contains(req)) throw lmc::Error(lmc::Status::InvalidArgument, std::string("header needs '") + req + "'");
  lmc::Header h;
  h.width = static_cast<uint32_t>(cont_uint(d["width"], "width", 0xFFFFFFFFu));
  h.height = static_cast<uint32_t>(cont_uint(d["height"], "height", 0xFFFFFFFFu));
  h.channels = static_cast<uint8_t>(cont_uint(d["channels"], "channels", 255));
  if (d.contains("bit_depth")) h.bit_depth = static_cast<uint8_t>(cont_uint(d["bit_depth"], "bit_depth", 255));
  h.codec = static_cast<uint8_t>(cont_uint(d["codec"], "codec", 255));
  if (d.contains("flags")) h.flags = static_cast<uint32_t>(cont_uint(d["flags"], "flags", 0xFFFFFFFFu));
  if (d.contains("tile_height"))
    h.tile_height = static_cast<uint32_t>(cont_uint(d["tile_height"], "tile_height", 0xFFFFFFFFu));
  const double q = PyFloat_AsDouble(py::object(d["quality"]).ptr());
  if (q == -1.0 && PyErr_Occurred()) {
    PyErr_Clear();
    throw lmc::Error(lmc::Status::InvalidArgument, "quality must be a number");
  }
  const double qx = q * 100.0;
  if (!(qx >= 99.5 && qx < 10000.5))  // also rejects NaN
    throw lmc::Error(lmc::Status::InvalidArgument, "quality " + std::to_string(q) + " is outside 1..100");
  h.quality_x100 = static_cast<uint16_t>(qx + 0.5);  // round half up; qx > 0
  h.model_id = cont_model_id(d["model_id"]);
  return h;
}

py::dict cont_header_to(const lmc::Header& h) {
  py::dict d;
  d["width"] = h.width;
  d["height"] = h.height;
  d["channels"] = h.channels;
  d["bit_depth"] = h.bit_depth;
  d["codec"] = h.codec;
  d["quality"] = h.quality_x100 / 100.0;
  d["model_id"] = py::bytes(reinterpret_cast<const char*>(h.model_id.data()), h.model_id.size());
  d["flags"] = h.flags;
  d["tile_height"] = h.tile_height;
  d["version"] = py::make_tuple(h.version_major, h.version_minor);
  return d;
}

lmc::ChunkType cont_chunk_type(py::handle t) {
  std::string s;
  if (py::isinstance<py::str>(t)) {
    s = py::cast<std::string>(t);
  } else {
    ContBuffer b(t, "chunk type");
    s.assign(reinterpret_cast<const char*>(b.data()), b.size());
  }
  if (s.size() != 4) throw lmc::Error(lmc::Status::InvalidArgument, "chunk type must be 4 ASCII letters, got '" + s + "'");
  return lmc::ChunkType{s[0], s[1], s[2], s[3]};
}

void bind_container(py::module_& m) {
  m.attr("CONTAINER_VERSION") = py::make_tuple(lmc::kFormatVersionMajor, lmc::kFormatVersionMinor);
  m.attr("CONTAINER_FLAG_HAS_ALPHA") = static_cast<uint32_t>(lmc::kFlagHasAlpha);
  m.def(
      "default_limits",
      []() {
        lmc::Limits l;
        py::dict d;
        d["max_pixels"] = l.max_pixels;
        d["max_dimension"] = l.max_dimension;
        d["max_chunk_bytes"] = l.max_chunk_bytes;
        d["max_chunks"] = l.max_chunks;
        return d;
      },
      "The reader's default limits.");
  m.def(
      "container_sniff",
      [](py::handle data) {
        if (!PyObject_CheckBuffer(data.ptr())) return false;
        ContBuffer b(data, "data");
        return lmc::sniff(b.data(), b.size());
      },
      py::arg("data"), "True if data starts with the .lmc signature (never raises).");
  m.def(
      "container_write",
      [](const py::dict& header, const py::iterable& chunks, const py::object& max_pixels,
         const py::object& max_dimension, const py::object& max_chunk_bytes, const py::object& max_chunks) {
        const lmc::Limits limits = cont_limits(max_pixels, max_dimension, max_chunk_bytes, max_chunks);
        const lmc::Header h = cont_header_from(header);
        std::vector<lmc::Chunk> cs;
        for (py::handle item : chunks) {
          if (!py::isinstance<py::sequence>(item) || py::len(item) != 2)
            throw lmc::Error(lmc::Status::InvalidArgument, "each chunk must be a (type, data) pair");
          py::sequence pair = py::reinterpret_borrow<py::sequence>(item);
          lmc::Chunk c;
          c.type = cont_chunk_type(pair[0]);
          ContBuffer b(pair[1], "chunk data");
          c.data.assign(b.data(), b.data() + b.size());
          cs.push_back(std::move(c));
        }
        std::vector<uint8_t> out;
        {
          py::gil_scoped_release nogil;
          out = lmc::write_container(h, cs, limits);
        }
        return to_bytes(out);
      },
      py::arg("header"), py::arg("chunks"), py::kw_only(), py::arg("max_pixels") = py::none(),
      py::arg("max_dimension") = py::none(), py::arg("max_chunk_bytes") = py::none(),
      py::arg("max_chunks") = py::none(),
      "Serialize an .lmc file; chunks are the (type, data) pairs between HEAD and ENDC, in order.");
  m.def(
      "container_read",
      [](py::handle data, const py::object& max_pixels, const py::object& max_dimension,
         const py::object& max_chunk_bytes, const py::object& max_chunks, const py::object& expected_model_id) {
        const lmc::Limits limits = cont_limits(max_pixels, max_dimension, max_chunk_bytes, max_chunks);
        ContBuffer b(data, "data");
        lmc::ContainerView v;
        if (b.immutable()) {
          py::gil_scoped_release nogil;
          v = lmc::read_container_view(b.data(), b.size(), limits);
        } else {
          v = lmc::read_container_view(b.data(), b.size(), limits);
        }
        if (!expected_model_id.is_none()) lmc::check_model_id(v.header, cont_model_id(expected_model_id));
        py::list chunks;
        for (const lmc::ChunkView& c : v.chunks)
          chunks.append(py::make_tuple(py::str(c.type.data(), 4),
                                       py::bytes(reinterpret_cast<const char*>(c.data), c.size)));
        return py::make_tuple(cont_header_to(v.header), chunks);
      },
      py::arg("data"), py::kw_only(), py::arg("max_pixels") = py::none(), py::arg("max_dimension") = py::none(),
      py::arg("max_chunk_bytes") = py::none(), py::arg("max_chunks") = py::none(),
      py::arg("expected_model_id") = py::none(),
      "Fully validate an .lmc file; returns (header dict, [(type, data)]) for the chunks between HEAD and ENDC.");
  m.def(
      "container_header",
      [](py::handle data, const py::object& max_pixels, const py::object& max_dimension,
         const py::object& max_chunk_bytes, const py::object& max_chunks, const py::object& expected_model_id) {
        const lmc::Limits limits = cont_limits(max_pixels, max_dimension, max_chunk_bytes, max_chunks);
        ContBuffer b(data, "data");
        const lmc::Header h = lmc::read_header(b.data(), b.size(), limits);
        if (!expected_model_id.is_none()) lmc::check_model_id(h, cont_model_id(expected_model_id));
        return cont_header_to(h);
      },
      py::arg("data"), py::kw_only(), py::arg("max_pixels") = py::none(), py::arg("max_dimension") = py::none(),
      py::arg("max_chunk_bytes") = py::none(), py::arg("max_chunks") = py::none(),
      py::arg("expected_model_id") = py::none(),
      "Read and validate the signature and HEAD chunk only (no decoding); returns the header dict.");
}

// ---------------------------------------------------------------- codec ---
// (section reserved for the codec binding)

// The codec binding goes through the public C API (include/lmcodec.h).
void raise_status(lmc_status st) {
  if (st == LMC_OK) return;
  throw lmc::Error(static_cast<lmc::Status>(static_cast<int>(st)), lmc_last_error());
}

// Progress reports from the codec's strip loops (on the calling thread,
// which released the GIL): takes the GIL, lets Python handle a pending
// signal (Ctrl-C cancels a long call instead of waiting for it), calls the
// user's callable (done, total); a truthy return value cancels. A Python
// exception raised there is re-raised once the call has unwound.
struct PyProgress {
  py::object fn;
  std::unique_ptr<py::error_already_set> error;

  static int call(void* user, uint32_t done, uint32_t total) {
    auto* self = static_cast<PyProgress*>(user);
    py::gil_scoped_acquire gil;
    try {
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
      if (!self->fn.is_none() && py::bool_(self->fn(done, total))) return 1;
    } catch (py::error_already_set& e) {
      self->error = std::make_unique<py::error_already_set>(std::move(e));
      return 1;
    }
    return 0;
  }

  void rethrow() {
    if (error) {
      std::unique_ptr<py::error_already_set> e = std::move(error);
      throw py::error_already_set(std::move(*e));
    }
  }
};

class PyModel {
 public:
  explicit PyModel(const std::string& path) {
    lmc_model* m = nullptr;
    lmc_status st;
    {
      py::gil_scoped_release nogil;
      st = lmc_model_open(path.c_str(), &m);
    }
    raise_status(st);
    m_ = m;
  }
  ~PyModel() { lmc_model_close(m_); }
  PyModel(const PyModel&) = delete;
  PyModel& operator=(const PyModel&) = delete;

  py::bytes encode(const py::array& image, double quality, int threads, int strip_rows, bool rdo,
                   py::object progress, py::object icc, py::object exif, py::object xmp,
                   py::object quality_map, int residual, int max_error) const {
    if (!py::isinstance<py::array_t<uint8_t>>(image) || image.dtype().kind() != 'u' || image.itemsize() != 1)
      throw lmc::Error(lmc::Status::InvalidArgument, "image must be a uint8 array");
    auto arr = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>::ensure(image);
    if (!arr) throw lmc::Error(lmc::Status::InvalidArgument, "image must be a uint8 array");
    if (arr.ndim() != 2 && arr.ndim() != 3) throw lmc::Error(lmc::Status::InvalidArgument, "image must be HxW or HxWxC");
    py::ssize_t h = arr.shape(0), w = arr.shape(1), c = arr.ndim() == 3 ? arr.shape(2) : 1;
    if (h < 1 || w < 1 || h > 0x7fffffff || w > 0x7fffffff)
      throw lmc::Error(lmc::Status::InvalidArgument, "bad image size");
    uint8_t* out = nullptr;
    size_t size = 0;
    lmc_status st;
    PyProgress prog{std::move(progress), nullptr};
    // metadata: bytes objects (immutable, alive for the call), read without the GIL
    std::string icc_s = icc.is_none() ? std::string() : std::string(py::bytes(icc));
    std::string exif_s = exif.is_none() ? std::string() : std::string(py::bytes(exif));
    std::string xmp_s = xmp.is_none() ? std::string() : std::string(py::bytes(xmp));
    auto u8 = [](const std::string& b) { return reinterpret_cast<const uint8_t*>(b.data()); };
    lmc_metadata md{u8(icc_s), icc_s.size(), u8(exif_s), exif_s.size(), u8(xmp_s), xmp_s.size()};
    lmc_encode_options opt{threads, strip_rows, rdo ? 0 : 1, &PyProgress::call, &prog, &md};
    opt.residual = residual;
    opt.max_error = max_error;
    carray<int8_t> qmap;  // (rows, cols) quality offsets, one per 64x64 block
    if (!quality_map.is_none()) {
      qmap = carray<int8_t>::ensure(quality_map);
      if (!qmap || qmap.ndim() != 2)
        throw lmc::Error(lmc::Status::InvalidArgument, "quality_map must be a 2-D int8 array (rows, cols)");
      opt.quality_map = qmap.data();
      opt.quality_map_rows = uint32_t(qmap.shape(0));
      opt.quality_map_cols = uint32_t(qmap.shape(1));
    }
    {
      py::gil_scoped_release nogil;
      st = lmc_encode(m_, arr.data(), uint32_t(w), uint32_t(h), size_t(w) * size_t(c), uint32_t(c), float(quality), &opt,
                      &out, &size);
    }
    prog.rethrow();
    raise_status(st);
    py::bytes result(reinterpret_cast<const char*>(out), size);
    lmc_free(out);
    return result;
  }

  // No copies: the bytes object (immutable, kept alive by the caller's
  // reference) is read without the GIL, and the returned array owns the
  // library's pixel buffer (freed with lmc_free), so the peak is the output
  // plus the decoder's bounded working set.
  py::array decode(py::bytes data, int threads, uint64_t max_pixels, uint64_t max_chunk_bytes, int strip_rows,
                   uint64_t max_dimension, uint64_t max_chunks, py::object progress) const {
    char* raw = nullptr;
    Py_ssize_t raw_size = 0;
    if (PyBytes_AsStringAndSize(data.ptr(), &raw, &raw_size) != 0) throw py::error_already_set();
    uint8_t* px = nullptr;
    lmc_image_info info;
    PyProgress prog{std::move(progress), nullptr};
    lmc_decode_options opt{threads, {max_pixels, max_chunk_bytes, max_dimension, max_chunks}, strip_rows,
                           &PyProgress::call, &prog};
    lmc_status st;
    {
      py::gil_scoped_release nogil;
      st = lmc_decode(m_, reinterpret_cast<const uint8_t*>(raw), size_t(raw_size), &opt, &px, &info);
    }
    prog.rethrow();
    raise_status(st);
    py::capsule owner(px, [](void* p) { lmc_free(p); });
    std::vector<py::ssize_t> shape = {py::ssize_t(info.height), py::ssize_t(info.width)};
    if (info.channels != 1) shape.push_back(py::ssize_t(info.channels));
    return py::array_t<uint8_t>(shape, px, owner);
  }

  py::dict info() const {
    py::dict d;
    uint8_t id[16];
    lmc_model_id(m_, id);
    static const char* hex = "0123456789abcdef";
    std::string s;
    for (uint8_t b : id) {
      s += hex[b >> 4];
      s += hex[b & 15];
    }
    d["model_id"] = s;
    d["codec"] = lmc_model_codec(m_);
    d["parameters"] = lmc_model_param_count(m_);
    for (const char* key : {"train.steps", "train.hours", "N", "M", "N1", "anchors"}) {
      double v;
      if (lmc_model_meta_number(m_, key, &v) == 0) {
        std::string k = key;
        for (char& ch : k)
          if (ch == '.') ch = '_';
        d[k.c_str()] = v;
      }
    }
    return d;
  }

 private:
  lmc_model* m_ = nullptr;
};

void bind_codec(py::module_& m) {
  py::class_<PyModel>(m, "Model")
      .def(py::init<const std::string&>(), py::arg("path"))
      .def("encode", &PyModel::encode, py::arg("image"), py::arg("quality"), py::arg("threads") = 0,
           py::arg("strip_rows") = 0, py::arg("rdo") = true, py::arg("progress") = py::none(),
           py::arg("icc_profile") = py::none(), py::arg("exif") = py::none(), py::arg("xmp") = py::none(),
           py::arg("quality_map") = py::none(), py::arg("residual") = 0,
           py::arg("max_error") = 0)
      .def("decode", &PyModel::decode, py::arg("data"), py::arg("threads") = 0, py::arg("max_pixels") = 0,
           py::arg("max_chunk_bytes") = 0, py::arg("strip_rows") = 0, py::arg("max_dimension") = 0,
           py::arg("max_chunks") = 0, py::arg("progress") = py::none())
      .def("info", &PyModel::info);
  m.def("set_force_scalar", [](bool force) { return std::string(lmc_set_force_scalar(force ? 1 : 0)); });
  m.def("kernel_path", [] { return std::string(lmc::dsp::active_isa_name()); });
  m.def("set_kernels", [](const std::string& name) {
    const char* r = lmc_set_kernels(name.c_str());
    if (!r) throw lmc::Error(lmc::Status::InvalidArgument, lmc_last_error());
    return std::string(r);
  });
  m.def("kernel_paths", [] {
    std::vector<std::string> out;
    for (const char* n : {"scalar", "avx2", "avx512"})
      if (lmc_kernels_available(n)) out.emplace_back(n);
    return out;
  });
  m.def("version", [] { return std::string(lmc_version()); });
  // (residual, max_error) of a stream, from lmc_info: (0, 0) for lossy ones
  m.def("stream_mode", [](py::bytes data) {
    char* raw = nullptr;
    Py_ssize_t raw_size = 0;
    if (PyBytes_AsStringAndSize(data.ptr(), &raw, &raw_size) != 0) throw py::error_already_set();
    lmc_image_info info{};
    lmc_limits lim{~uint64_t(0) >> 2, ~uint64_t(0) >> 2, 0xFFFFFFFFu, ~uint64_t(0) >> 2};
    raise_status(lmc_info(reinterpret_cast<const uint8_t*>(raw), size_t(raw_size), &lim, &info));
    return py::make_tuple(info.residual, info.max_error);
  });
}

// ------------------------------------------------------------------ pca ---
// The linear baseline codec (core/pca_codec.h). One model is loaded per
// weights path and kept for the life of the process.

std::shared_ptr<const lmc::PcaCodec> pca_model(const std::string& path) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const lmc::PcaCodec>> cache;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(path);
    if (it != cache.end()) return it->second;
  }
  auto model = std::make_shared<const lmc::PcaCodec>(lmc::Weights::from_file(path));
  std::lock_guard<std::mutex> lock(mu);
  return cache.emplace(path, std::move(model)).first->second;
}

uint16_t pca_quality(long long q) {
  if (q < 100 || q > 10000)
    throw lmc::Error(lmc::Status::InvalidArgument, "quality_x100 must be in [100, 10000], got " + std::to_string(q));
  return static_cast<uint16_t>(q);
}

uint32_t pca_dim(long long v, const char* what) {
  if (v < 1 || v > 0xffffffffLL) throw lmc::Error(lmc::Status::InvalidArgument, std::string("bad ") + what);
  return static_cast<uint32_t>(v);
}

void bind_pca(py::module_& m) {
  m.def(
      "pca_encode",
      [](const std::string& path, const py::array& rgb, long long quality_x100) {
        if (!py::isinstance<py::array_t<uint8_t>>(rgb) || rgb.dtype().kind() != 'u' || rgb.itemsize() != 1)
          throw lmc::Error(lmc::Status::InvalidArgument, "rgb must be a uint8 array");
        auto arr = carray<uint8_t>::ensure(rgb);
        if (!arr || arr.ndim() != 3 || arr.shape(2) != 3)
          throw lmc::Error(lmc::Status::InvalidArgument, "rgb must be an HxWx3 uint8 array");
        const uint32_t h = pca_dim(arr.shape(0), "height"), w = pca_dim(arr.shape(1), "width");
        const uint16_t q = pca_quality(quality_x100);
        std::vector<uint8_t> out;
        {
          py::gil_scoped_release nogil;
          out = pca_model(path)->encode(arr.data(), w, h, size_t(w) * 3, q);
        }
        return to_bytes(out);
      },
      py::arg("weights_path"), py::arg("rgb"), py::arg("quality_x100"),
      "PCA baseline: encode an HxWx3 uint8 image; returns the payload (one rANS stream).");
  m.def(
      "pca_decode",
      [](const std::string& path, py::bytes payload, long long width, long long height, long long quality_x100) {
        const uint32_t w = pca_dim(width, "width"), h = pca_dim(height, "height");
        const uint16_t q = pca_quality(quality_x100);
        std::string buf = payload;
        std::shared_ptr<const lmc::PcaCodec> model;
        {
          py::gil_scoped_release nogil;
          model = pca_model(path);
        }
        py::array_t<uint8_t> out({py::ssize_t(h), py::ssize_t(w), py::ssize_t(3)});
        uint8_t* dst = out.mutable_data();
        {
          py::gil_scoped_release nogil;
          model->decode(reinterpret_cast<const uint8_t*>(buf.data()), buf.size(), w, h, q, dst);
        }
        return out;
      },
      py::arg("weights_path"), py::arg("payload"), py::arg("width"), py::arg("height"), py::arg("quality_x100"),
      "PCA baseline: decode a payload to an HxWx3 uint8 image.");
}

// -------------------------------------------------------------- explain ---
// Internal views of a hyperprior stream for lmcodec.explain (python/lmcodec/
// explain.py): the coded symbols with their code lengths, and g_s on given
// latents. One model per weights path, kept for the life of the process.

struct HyperEntry {
  lmc::Weights weights;
  std::unique_ptr<lmc::HyperpriorModel> model;
};

std::shared_ptr<const HyperEntry> hyper_model(const std::string& path) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const HyperEntry>> cache;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(path);
    if (it != cache.end()) return it->second;
  }
  auto e = std::make_shared<HyperEntry>();
  e->weights = lmc::Weights::from_file(path);
  e->model = std::make_unique<lmc::HyperpriorModel>(e->weights);
  std::lock_guard<std::mutex> lock(mu);
  return cache.emplace(path, std::move(e)).first->second;
}

template <typename T>
py::array_t<T> shaped(const std::vector<T>& v, std::vector<py::ssize_t> shape) {
  py::array_t<T> a(shape);
  std::memcpy(a.mutable_data(), v.data(), v.size() * sizeof(T));
  return a;
}

py::dict explain_stream(const std::string& path, py::bytes data, int threads) {
  std::string buf = data;
  const uint8_t* p = reinterpret_cast<const uint8_t*>(buf.data());
  std::shared_ptr<const HyperEntry> e;
  lmc::StreamSymbols s;
  std::vector<int8_t> offsets;
  size_t side_size = 0, lat_size = 0;
  lmc::Header h;
  {
    py::gil_scoped_release nogil;
    e = hyper_model(path);
    lmc::ContainerView v = lmc::read_container_view(p, buf.size());
    h = v.header;
    LMC_CHECK(h.codec == lmc::kCodecHyperprior, lmc::Status::Unsupported, "explain needs a hyperprior stream");
    lmc::check_model_id(h, e->weights.model_id());
    const lmc::ChunkView* side = v.find(lmc::kSideInfo);
    const lmc::ChunkType lat_type = e->model->has_context() ? lmc::kLatentsCtx : lmc::kLatents;
    const lmc::ChunkView* lat = v.find(lat_type);
    LMC_CHECK(side && lat && v.find_all(lat_type).size() == 1 && h.tile_height == 0, lmc::Status::CorruptStream,
              "stream needs one SIDE and one latents chunk (LATN, or LATC with a context model)");
    const lmc::ChunkView* q = v.find(lmc::kQualityMap);
    lmc::QualityMap qmap;
    if (q) {
      qmap = lmc::read_quality_map(q->data, q->size, h.width, h.height, h.quality_x100);
      offsets = lmc::quality_map_offsets(q->data, q->size, h.width, h.height);
    }
    side_size = side->size;
    lat_size = lat->size;
    lmc::dsp::PoolLease pool(threads > 0 ? threads : lmc::dsp::ThreadPool::hardware_threads());
    s = lmc::stream_symbols(*e->model, side->data, side->size, lat->data, lat->size, h.width, h.height,
                            h.quality_x100, &qmap, pool.get());
  }
  const lmc::Latents& L = s.sym;
  py::dict d;
  d["width"] = h.width;
  d["height"] = h.height;
  d["quality"] = h.quality_x100 / 100.0;
  d["side_bytes"] = side_size;
  d["latent_bytes"] = lat_size;
  d["latent_chunk"] = e->model->has_context() ? "LATC" : "LATN";
  d["z"] = shaped(L.z, {L.N, L.zh, L.zw});
  d["r"] = shaped(L.r, {L.M, L.yh, L.yw});
  d["idx"] = shaped(L.idx, {L.M, L.yh, L.yw});
  d["mu"] = shaped(s.mu, {L.M, L.yh, L.yw});
  d["y_hat"] = shaped(s.y_hat, {L.M, L.yh, L.yw});
  d["bits_z"] = shaped(s.bits_z, {L.N, L.zh, L.zw});
  d["bits_y"] = shaped(s.bits_y, {L.M, L.yh, L.yw});
  if (offsets.empty()) d["quality_map"] = py::none();
  else d["quality_map"] = shaped(offsets, {L.zh, L.zw});
  return d;
}

py::array synthesize(const std::string& path, const carray<float>& y, long long width, long long height, int threads) {
  if (y.ndim() != 3) throw lmc::Error(lmc::Status::InvalidArgument, "latents must be (M, yh, yw)");
  if (width < 1 || height < 1 || width > 65535 || height > 65535)
    throw lmc::Error(lmc::Status::InvalidArgument, "bad image size");
  std::shared_ptr<const HyperEntry> e;
  {
    py::gil_scoped_release nogil;
    e = hyper_model(path);
  }
  if (y.shape(0) != e->model->M() || y.shape(1) != (height + 63) / 64 * 4 || y.shape(2) != (width + 63) / 64 * 4)
    throw lmc::Error(lmc::Status::InvalidArgument, "latents do not match the model and the image size");
  py::array_t<uint8_t> out({py::ssize_t(height), py::ssize_t(width), py::ssize_t(3)});
  uint8_t* dst = out.mutable_data();
  const float* src = y.data();
  const int yh = int(y.shape(1)), yw = int(y.shape(2));
  {
    py::gil_scoped_release nogil;
    lmc::dsp::PoolLease pool(threads > 0 ? threads : lmc::dsp::ThreadPool::hardware_threads());
    e->model->synthesize(src, yh, yw, uint32_t(width), uint32_t(height), pool.get(), dst);
  }
  return out;
}

void bind_explain(py::module_& m) {
  m.def("hyperprior_explain", &explain_stream, py::arg("weights_path"), py::arg("data"), py::arg("threads") = 0,
        "The coded symbols of a hyperprior stream (z, r, idx, mu, y_hat) and each one's code length in bits "
        "(bits_z, bits_y), with the SIDE/LATN payload sizes and the quality map's offsets.");
  m.def("hyperprior_synthesize", &synthesize, py::arg("weights_path"), py::arg("y_hat"), py::arg("width"),
        py::arg("height"), py::arg("threads") = 0,
        "g_s on dequantised latents (M, yh, yw) float32 -> (height, width, 3) uint8, as the decoder's last stage.");
}

// -------------------------------------------------------------- profile ---

void bind_profile(py::module_& m) {
  m.def("profile_enable", &lmc::profile::enable, py::arg("on"),
        "Record per-stage wall time of every encode/decode (benchmarks only).");
  m.def(
      "profile_take",
      [] {
        py::list out;
        for (const lmc::profile::Entry& e : lmc::profile::take()) {
          py::dict d;
          d["name"] = e.name;
          d["calls"] = e.calls;
          d["seconds"] = e.seconds;
          d["macs"] = e.macs;
          out.append(d);
        }
        return out;
      },
      "The per-stage totals since the last call (name, calls, seconds, macs), in first-seen order; clears them.");
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "lmcodec C++ core: the C API of include/lmcodec.h (use the lmcodec package API); .internal: core parts for training and tests";
  static py::exception<lmc::Error> lmc_error(m, "LmcError", PyExc_ValueError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const lmc::Error& e) {
      py::set_error(lmc_error, (std::string(lmc::status_name(e.code())) + ": " + e.what()).c_str());
    } catch (const std::bad_alloc&) {
      py::set_error(lmc_error, "out of memory");
    } catch (const py::error_already_set&) {
      throw;
    } catch (const py::builtin_exception&) {
      throw;
    } catch (const std::exception& e) {
      py::set_error(lmc_error, (std::string("internal error: ") + e.what()).c_str());
    }
  });
  // lmcodec._core: what include/lmcodec.h offers (models, encode, decode,
  // stream info, kernel paths, version), through that C API only.
  bind_codec(m);
  // lmcodec._core.internal: the core's parts for training, tests, tools and
  // benchmarks (rANS and CDF tables, the container, the PCA codec, explain's
  // per-symbol view, the stage profiler). Not a stable interface.
  py::module_ internal = m.def_submodule(
      "internal", "lmcodec core internals for training, tests and benchmarks (not a stable interface)");
  bind_coder(internal);
  bind_container(internal);
  bind_pca(internal);
  bind_explain(internal);
  bind_profile(internal);
}
