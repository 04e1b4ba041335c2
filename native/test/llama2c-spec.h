// A llama2.c checkpoint (legacy v0) as a LoadSpec manifest, for the test program only.
#pragma once
#include <string>

#include "../src/core/load-spec.h"

namespace flotilla::test {

LoadSpec llama2c_spec(const std::string& path);  // throws std::runtime_error on a bad header

}  // namespace flotilla::test
