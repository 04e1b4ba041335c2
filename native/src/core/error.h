// A user-facing failure with a stable code (E_SHAPE, E_RANGE, E_DTYPE, E_FILE, E_OOM, E_BATCH, ...).
// Thrown by the core and turned into a JS Error with `.code` by the addon.
#pragma once
#include <stdexcept>
#include <string>

namespace flotilla {

class EngineError : public std::runtime_error {
 public:
  EngineError(std::string code, const std::string& message) : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

[[noreturn]] inline void fail(const char* code, const std::string& message) { throw EngineError(code, message); }

}  // namespace flotilla
