#include "aligned-buffer.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "error.h"

namespace flotilla {

AlignedBuffer::AlignedBuffer(size_t bytes, const char* what, bool zeroed) {
  if (bytes == 0) return;
  size_t rounded = (bytes + 63) / 64 * 64;
  void* p = nullptr;
  if (posix_memalign(&p, rounded >= (2u << 20) ? (2u << 20) : 64, rounded) != 0 || p == nullptr) {
    fail("E_OOM", "cannot allocate " + std::to_string(bytes) + " bytes for " + what);
  }
#ifdef MADV_HUGEPAGE
  if (rounded >= (2u << 20)) madvise(p, rounded, MADV_HUGEPAGE);  // fewer TLB misses when streaming weights
#endif
  if (zeroed) std::memset(p, 0, rounded);
  data_ = static_cast<uint8_t*>(p);
  size_ = bytes;
}

AlignedBuffer::~AlignedBuffer() { std::free(data_); }

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& o) noexcept {
  if (this != &o) {
    std::free(data_);
    data_ = o.data_;
    size_ = o.size_;
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

}  // namespace flotilla
